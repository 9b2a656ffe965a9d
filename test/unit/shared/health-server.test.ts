import { describe, expect, it } from '@jest/globals';
import { Readiness, startHealthServer } from '../../../src/shared/health-server.js';

describe('readiness and /healthz', () => {
  it('is ready only when every check returns true; a throwing check counts as not ready', () => {
    const readiness = new Readiness();
    expect(readiness.report()).toEqual({ ready: true, notReady: [] });
    readiness.register('a', () => true);
    const removeB = readiness.register('b', () => false);
    readiness.register('c', () => {
      throw new Error('boom');
    });
    expect(readiness.report()).toEqual({ ready: false, notReady: ['b', 'c'] });
    removeB();
    expect(readiness.report().notReady).toEqual(['c']);
    expect(() => readiness.register('a', () => true)).toThrow(TypeError);
  });

  it('serves GET /healthz as 200 or 503 with a JSON body, and nothing else', async () => {
    const readiness = new Readiness();
    let grpcReady = false;
    readiness.register('sentry-grpc', () => grpcReady);
    readiness.register('validator:jwks', () => true);
    const server = await startHealthServer({ readiness, listenAddress: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${server.port}`;
    try {
      const down = await fetch(`${base}/healthz`);
      expect(down.status).toBe(503);
      expect(down.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await down.json()).toEqual({ status: 'not ready', notReady: ['sentry-grpc'] });
      grpcReady = true;
      expect((await fetch(`${base}/healthz?verbose=1`)).status).toBe(200);
      expect((await fetch(`${base}/healthz`, { method: 'HEAD' })).status).toBe(200);
      expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
      expect((await fetch(`${base}/other`)).status).toBe(404);
    } finally {
      await server.close();
      await server.close(); // idempotent
    }
  });
});
