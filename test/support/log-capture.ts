import { createLogger, type Logger } from '../../src/shared/logger.js';

/** A real pino logger (with Warden's redaction) whose lines a test can read back. */
export interface CapturedLog {
  readonly logger: Logger;
  readonly text: () => string;
  readonly lines: () => Array<Record<string, unknown>>;
}

export function captureLog(): CapturedLog {
  const chunks: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (chunk: string) => void chunks.push(chunk) },
  });
  return {
    logger,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line.trim().length > 0)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** The base64 body of a PEM in 16-character pieces: none may appear in logs or errors. */
export function keyChunks(pem: string): string[] {
  const body = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const out: string[] = [];
  for (let i = 0; i + 16 <= body.length; i += 16) out.push(body.slice(i, i + 16));
  return out;
}
