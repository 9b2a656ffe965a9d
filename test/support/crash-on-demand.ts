/**
 * Loaded by crashing-signing-worker.ts before the real worker: a request whose SPIFFE ID ends
 * in "/crash-worker" exits the thread before the real worker's listener sees it.
 */
import { parentPort } from 'node:worker_threads';

parentPort?.on('message', (message: { type: string; spiffeId?: string }) => {
  if (message.type === 'sign' && message.spiffeId?.endsWith('/crash-worker')) process.exit(70);
});
