/**
 * A signing worker that starts late: it blocks its thread for SLOW_START_MS before loading
 * the real worker, so a test can see what the pool does while its workers are starting.
 * Only usable as a worker entry point.
 */
export const SLOW_START_MS = 1500;

Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, SLOW_START_MS);
await import('../../src/issuer/signing/signing-worker.js');
