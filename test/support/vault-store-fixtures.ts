import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Clock } from '../../src/shared/clock.js';
import { createLogger, type Logger } from '../../src/shared/logger.js';
import {
  CONFORMANCE_MULTI_KEY_SECRETS,
  CONFORMANCE_SINGLE_KEY_SECRETS,
  type SecretStore,
} from '../../src/secrets/secret-store.js';
import {
  createVaultSecretStore,
  type VaultSecretStoreContext,
} from '../../src/secrets/stores/vault/vault-secret-store.js';
import type { VaultTimers } from '../../src/secrets/stores/vault/vault-token-session.js';
import type { ManualClock } from '../../src/shared/clock.js';
import type { VaultTestServer } from './vault-test-server.js';

/** Seeds the conformance data into a KV mount of the test server. */
export function seedConformanceSecrets(
  server: VaultTestServer,
  options: { mount?: string; prefix?: string; namespace?: string; multiKey?: boolean } = {},
): void {
  const mount = options.mount ?? 'secret';
  const prefix = options.prefix ?? 'dapr';
  const all = {
    ...CONFORMANCE_SINGLE_KEY_SECRETS,
    ...(options.multiKey === false ? {} : CONFORMANCE_MULTI_KEY_SECRETS),
  };
  for (const [name, data] of Object.entries(all)) {
    server.setKv(
      mount,
      prefix === '' ? name : `${prefix}/${name}`,
      { ...data },
      options.namespace ?? '',
    );
  }
}

/** A pino logger writing JSON lines into memory, so tests can grep what was logged. */
export function createCapturedLogger(): { logger: Logger; lines: string[]; text(): string } {
  const lines: string[] = [];
  const logger = createLogger({
    level: 'debug',
    json: false,
    destination: { write: (msg: string) => void lines.push(msg) },
  });
  return { logger, lines, text: () => lines.join('') };
}

export async function makeTempDir(label: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `warden-vault-${label}-`));
}

/** Context with fast, still-bounded retries so tests never wait for real back-off. */
export function testContext(
  logger: Logger,
  clock: Clock,
  extra: {
    timers?: VaultTimers;
    sleep?: (ms: number) => Promise<void>;
    maxAttempts?: number;
    maxResponseBytes?: number;
  } = {},
): VaultSecretStoreContext {
  return {
    logger,
    clock,
    ...(extra.timers === undefined ? {} : { timers: extra.timers }),
    transport: {
      timeoutMs: 5000,
      retry: {
        maxAttempts: extra.maxAttempts ?? 4,
        baseDelayMs: 5,
        maxDelayMs: 20,
        maxRetryAfterMs: 10_000,
      },
      ...(extra.sleep === undefined ? {} : { sleep: extra.sleep }),
      ...(extra.maxResponseBytes === undefined ? {} : { maxResponseBytes: extra.maxResponseBytes }),
    },
  };
}

export async function createStore(
  metadata: Record<string, string>,
  context: VaultSecretStoreContext,
): Promise<SecretStore> {
  return createVaultSecretStore(metadata, context);
}

/**
 * Timers that fire only when the test moves its ManualClock through them, so background
 * token renewal can be observed without sleeping.
 */
export class ManualTimers implements VaultTimers {
  readonly #clock: ManualClock;
  #next = 1;
  readonly #pending = new Map<number, { at: number; callback: () => void }>();

  constructor(clock: ManualClock) {
    this.#clock = clock;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next;
    this.#next += 1;
    this.#pending.set(id, { at: this.#clock.now().getTime() + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  /** Due times of the scheduled callbacks, in clock ms. */
  scheduled(): number[] {
    return [...this.#pending.values()].map((t) => t.at).sort((a, b) => a - b);
  }

  /** Moves the clock forward and fires every callback that falls due, in order. */
  advance(ms: number): void {
    const target = this.#clock.now().getTime() + ms;
    for (;;) {
      const due = [...this.#pending.entries()]
        .filter(([, t]) => t.at <= target)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#pending.delete(due[0]);
      this.#clock.set(Math.max(this.#clock.now().getTime(), due[1].at));
      due[1].callback();
    }
    this.#clock.set(target);
  }
}

/** Polls until `condition` holds (for background work on real sockets); fails after ~5 s. */
export async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i += 1) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function rejectionOf(
  promise: Promise<unknown>,
): Promise<{ code: string; message: string; error: unknown }> {
  try {
    await promise;
  } catch (err) {
    const code =
      typeof err === 'object' && err !== null && 'code' in err
        ? String((err as { code: unknown }).code)
        : 'no-code';
    return { code, message: err instanceof Error ? err.message : String(err), error: err };
  }
  return { code: 'resolved', message: '', error: undefined };
}
