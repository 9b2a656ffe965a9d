/**
 * Loaded by crashing-signing-worker.ts before the real worker: a batch holding a request
 * whose SPIFFE ID ends in "/crash-worker" exits the thread before the real worker sees it.
 */
import { parentPort } from 'node:worker_threads';

parentPort?.on('message', (message: { type: string; requests?: { spiffeId: string }[] }) => {
  if (
    message.type === 'sign' &&
    message.requests?.some((r) => r.spiffeId.endsWith('/crash-worker'))
  )
    process.exit(70);
});
