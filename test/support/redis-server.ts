import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

/** Where the Debian package installs it. */
export const REDIS_SERVER_BINARY = '/usr/bin/redis-server';

export interface RunningRedis {
  readonly port: number;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
  stop(): Promise<void>;
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts a real redis-server on a free loopback port with `--requirepass`, no persistence,
 * and waits until it accepts connections. The password is on the command line: a test
 * server's throwaway password only.
 */
export async function startRedisServer(options: { password: string; binary?: string }): Promise<RunningRedis> {
  const port = await freeLoopbackPort();
  const child: ChildProcess = spawn(
    options.binary ?? REDIS_SERVER_BINARY,
    ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', options.password, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited early:\n${output}`);
    if (/Ready to accept connections/.test(output)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not start within 10s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { port, stop };
}

/** Encodes a command as a RESP array of bulk strings. */
export function encodeRespCommand(args: readonly string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(''));
}

/**
 * Sends commands in order over one plain socket and returns each reply's first line
 * (`+OK`, `-WRONGPASS ...`, `+PONG`, `-NOAUTH ...`): enough for AUTH and PING.
 */
export async function redisCommands(port: number, commands: ReadonlyArray<readonly string[]>): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const replies: string[] = [];
    let buffered = '';
    let sent = 0;
    const sendNext = (): void => {
      const command = commands[sent++];
      if (command) socket.write(encodeRespCommand(command));
    };
    socket.setTimeout(5000, () => socket.destroy(new Error('redis did not answer within 5s')));
    socket.on('connect', sendNext);
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\r\n')) !== -1) {
        replies.push(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 2);
        if (replies.length === commands.length) {
          socket.end();
          resolve(replies);
          return;
        }
        sendNext();
      }
    });
    socket.on('error', reject);
  });
}
