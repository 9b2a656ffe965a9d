import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { listenHttp, type HttpListener } from './http-listener.js';

export interface MetricsServerOptions {
  readonly registry: Registry;
  readonly listenAddress: string;
  readonly port: number;
}

/** Handles `GET /metrics` in the Prometheus text format from one explicit registry. */
export function metricsHandler(
  registry: Registry,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
        .end('method not allowed\n');
      return;
    }
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** Dapr's metrics endpoint (`--metrics-port`, default 9090). */
export function startMetricsServer(options: MetricsServerOptions): Promise<HttpListener> {
  return listenHttp(metricsHandler(options.registry), options.listenAddress, options.port);
}
