/**
 * Loaded by crashing-signing-worker.ts before the real worker: a batch holding a request
 * whose SPIFFE ID ends in "/crash-worker" exits the thread before the real worker sees it.
 */
import { parentPort } from 'node:worker_threads';

parentPort?.on('message', (message: { type: string; spiffeIds?: string[] }) => {
  if (message.type === 'sign' && message.spiffeIds?.some((id) => id.endsWith('/crash-worker')))
    process.exit(70);
});
