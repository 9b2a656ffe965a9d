import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenHttp, type HttpListener } from './http-listener.js';

export type ReadinessCheck = () => boolean;

export interface ReadinessReport {
  readonly ready: boolean;
  /** Names of the parts that are not ready (or whose check threw), in registration order. */
  readonly notReady: readonly string[];
}

/** The parts whose readiness /healthz reports; each registers a named check. */
export class Readiness {
  readonly #checks = new Map<string, ReadinessCheck>();

  /** Adds a check; returns a function that removes it. */
  register(name: string, check: ReadinessCheck): () => void {
    if (this.#checks.has(name)) throw new TypeError(`readiness check ${name} registered twice`);
    this.#checks.set(name, check);
    return () => {
      if (this.#checks.get(name) === check) this.#checks.delete(name);
    };
  }

  report(): ReadinessReport {
    const notReady: string[] = [];
    for (const [name, check] of this.#checks) {
      let ok = false;
      try {
        ok = check() === true;
      } catch {
        ok = false; // a check that throws is not ready: never report healthy by accident
      }
      if (!ok) notReady.push(name);
    }
    return Object.freeze({ ready: notReady.length === 0, notReady: Object.freeze(notReady) });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Handles `GET /healthz`: 200 when every registered check is true, else 503 naming the others. */
export function healthzHandler(
  readiness: Readiness,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz') {
      send(res, 404, { error: 'not found' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, { error: 'method not allowed' });
      return;
    }
    const report = readiness.report();
    if (report.ready) send(res, 200, { status: 'ok' });
    else send(res, 503, { status: 'not ready', notReady: report.notReady });
  };
}

export interface HealthServerOptions {
  readonly readiness: Readiness;
  readonly listenAddress: string;
  readonly port: number;
}

/** Dapr Sentry's health endpoint (`--healthz-port`, default 8080). */
export function startHealthServer(options: HealthServerOptions): Promise<HttpListener> {
  return listenHttp(healthzHandler(options.readiness), options.listenAddress, options.port);
}
