import { Writable } from 'node:stream';
import type { CliIo } from '../../src/cli/command.js';

/** A CliIo whose stdout and stderr are collected in memory. */
export function memoryIo(env: NodeJS.ProcessEnv = {}): CliIo & { out(): string; err(): string } {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]): Writable =>
    new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        into.push(chunk.toString());
        callback();
      },
    });
  return { stdout: sink(out), stderr: sink(err), env, out: () => out.join(''), err: () => err.join('') };
}
