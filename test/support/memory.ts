import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Memory readings for the hostile suites' "no growth after N repetitions" checks.
 *
 * jest runs tests without --expose-gc. V8 still accepts the flag at run time, and a fresh
 * vm context then carries a `gc` global: a full collection on demand, so heapUsed after it
 * measures what is still reachable. RSS is reported too (with a looser bound) because it is
 * what an operator sees, and it also counts native buffers, TLS and the worker threads.
 */
let gc: (() => void) | null = null;

export function collectGarbage(): void {
  if (gc === null) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  // Twice: the first pass can leave objects whose finalizers ran for the second.
  gc();
  gc();
}

export interface MemoryReading {
  readonly rss: number;
  /** What is still reachable: JS heap plus memory outside it (Buffers, ArrayBuffers). */
  readonly live: number;
}

/** Memory after a full collection. */
export function memoryAfterGc(): MemoryReading {
  collectGarbage();
  const { rss, heapUsed, external } = process.memoryUsage();
  return { rss, live: heapUsed + external };
}

export function mebibytes(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
