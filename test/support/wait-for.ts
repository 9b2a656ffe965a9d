/**
 * Polling for events that arrive over real sockets or timers. The limit is a failure bound,
 * not a performance assertion: a passing test never waits for it.
 */

/** Polls until `check` returns a value other than undefined; throws after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Polls until `condition` (sync or async) holds; throws after `limitMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  limitMs = 10_000,
): Promise<void> {
  await waitFor(async () => ((await condition()) ? true : undefined), limitMs, what);
}
