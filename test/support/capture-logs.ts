import { createLogger, type Logger } from '../../src/shared/logger.js';

export interface CapturedLogger {
  readonly logger: Logger;
  readonly lines: () => Record<string, unknown>[];
  readonly text: () => string;
}

/** A real pino logger (with redaction) writing into memory, to assert on log lines. */
export function captureLogs(): CapturedLogger {
  const chunks: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (msg: string) => void chunks.push(msg) },
  });
  return {
    logger,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Polls `condition` until it holds or `timeoutMs` passes (bounded waits, no tight timings). */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The base64 body of a PEM in 16-character pieces: none may appear in logs or errors. */
export function keyChunks(pem: string): string[] {
  const body = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const out: string[] = [];
  for (let i = 0; i + 16 <= body.length; i += 16) out.push(body.slice(i, i + 16));
  return out;
}
