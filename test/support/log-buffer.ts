import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/shared/logger.js';

/**
 * A real Warden logger (same redact paths as production) that writes into memory, so a
 * test can search everything that was logged.
 */
export function bufferLogger(level: 'trace' | 'debug' | 'info' = 'trace'): { logger: Logger; text(): string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const logger = createLogger({ level, json: false, destination });
  return { logger, text: () => chunks.join('') };
}
