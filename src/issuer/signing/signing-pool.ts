import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { systemClock, type Clock } from '../../shared/clock.js';
import { describeError, WardenError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { TrustBundle, TrustSource } from '../../ca/trust-bundle.js';
import type {
  CertificateSigner,
  IssuedCertificate,
  LeafProfileOptions,
  WorkloadCertificateRequest,
} from '../certificate-signer.js';
import {
  assertLeafProfile,
  assertWorkloadIdentity,
  createLeafIssuer,
  type LeafIssuer,
} from './leaf-signer.js';
import { signingMaterialOf, type SigningMaterial } from './signing-material.js';
import {
  fromWireError,
  fromWireIssued,
  type FromSigningWorker,
  type SigningWorkerData,
  type ToSigningWorker,
  type WireSignRequest,
} from './signing-protocol.js';

export interface SigningPoolOptions {
  /** Where the trust material comes from; every change reaches every worker (see below). */
  readonly source: TrustSource;
  readonly profile: LeafProfileOptions;
  /** Worker threads to sign in; 0 signs in the calling thread with the same code. */
  readonly workers: number;
  /** Decides every leaf's dates, read in the calling thread at request time. */
  readonly clock?: Clock;
  readonly logger: Logger;
  /** Requests queued or running per worker before ERR_OVERLOADED (default 256). */
  readonly maxQueue?: number;
  /**
   * The worker entry script (default: the compiled signing-worker.js beside this file). Tests
   * use a wrapper that can crash on demand; it must load signing-worker.js itself.
   */
  readonly workerScript?: URL;
  /** How long close() waits for in-flight requests before terminating workers (default 10 s). */
  readonly closeTimeoutMs?: number;
}

export interface SigningPool extends CertificateSigner {
  /** Resolves when every worker has loaded the current material; rejects if one cannot. */
  ready(): Promise<void>;
  /** Worker threads configured (0 = in-thread). */
  readonly workerCount: number;
}

export const DEFAULT_MAX_QUEUE = 256;

/**
 * The default for `--workers` (issue 7): one signing thread per available core. The gRPC
 * edge shares those cores from the main thread; bench/sign-path.ts shows the trade-off.
 */
export function defaultSigningWorkerCount(): number {
  return availableParallelism();
}
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
const MAX_RESPAWN_DELAY_MS = 5_000;

interface Pending {
  readonly resolve: (issued: IssuedCertificate) => void;
  readonly reject: (err: Error) => void;
}

/**
 * A CertificateSigner over a pool of worker threads (or the calling thread when workers = 0).
 *
 * Invariant: every request passed to sign() after `source.onChange` has fired is signed with
 * the new generation, never the old one. The change listener posts the new material to every
 * live worker synchronously; a MessagePort delivers messages in posting order; the worker
 * swaps its issuer synchronously when the material message is handled, and each sign
 * message takes the worker's issuer when its handler starts. A worker that is (re)spawned
 * later starts from the latest material. If the new material cannot be loaded the worker
 * refuses requests (ERR_SIGNING_FAILED) rather than keep signing with the old issuer.
 *
 * A worker that dies fails its in-flight requests with ERR_SIGNING_FAILED and is replaced
 * (with a growing delay if replacements keep dying before they are ready).
 */
export function createSigningPool(options: SigningPoolOptions): SigningPool {
  if (!Number.isInteger(options.workers) || options.workers < 0)
    throw new TypeError('workers must be a non-negative integer');
  const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
  if (!Number.isInteger(maxQueue) || maxQueue < 1)
    throw new TypeError('maxQueue must be a positive integer');
  assertLeafProfile(options.profile);
  return options.workers === 0
    ? createInThreadPool(options)
    : new WorkerSigningPool(options, maxQueue);
}

function closedError(): WardenError {
  return new WardenError('ERR_SIGNING_FAILED', 'signing pool is closed');
}

function createInThreadPool(options: SigningPoolOptions): SigningPool {
  const clock = options.clock ?? systemClock;
  const { logger, profile } = options;
  let closed = false;
  let issuer: LeafIssuer | null = null;
  let problem: WardenError | null = null;

  const apply = (bundle: TrustBundle): void => {
    try {
      issuer = createLeafIssuer(bundle, profile);
      problem = null;
    } catch (err) {
      // Fail closed: never keep signing with the retired issuer.
      issuer = null;
      problem =
        err instanceof WardenError
          ? err
          : new WardenError('ERR_SIGNING_FAILED', 'trust material could not be loaded', {
              cause: err,
            });
      logger.error(
        { generation: bundle.generation, err: describeError(err) },
        'signing material could not be loaded; refusing to sign',
      );
    }
  };
  apply(options.source.current());
  const unsubscribe = options.source.onChange(apply);

  return {
    workerCount: 0,
    async ready(): Promise<void> {
      if (problem) throw problem;
    },
    async sign(request: WorkloadCertificateRequest): Promise<IssuedCertificate> {
      if (closed) throw closedError();
      assertWorkloadIdentity(request);
      const current = issuer;
      if (!current)
        throw new WardenError(
          'ERR_SIGNING_FAILED',
          `no usable trust material${problem ? `: ${problem.message}` : ''}`,
        );
      return current.issue(request, clock.now().getTime());
    },
    async close(): Promise<void> {
      closed = true;
      unsubscribe();
    },
  };
}

class WorkerSlot {
  readonly index: number;
  readonly worker: Worker;
  readonly inFlight = new Map<number, Pending>();
  /** Requests accepted this tick, posted together by the next flush. */
  outgoing: WireSignRequest[] = [];
  ready = false;
  /** Set when the pool terminates it on purpose (close), so exit is not a crash. */
  stopping = false;

  constructor(index: number, worker: Worker) {
    this.index = index;
    this.worker = worker;
  }
}

class WorkerSigningPool implements SigningPool {
  readonly workerCount: number;
  readonly #options: SigningPoolOptions;
  readonly #maxQueue: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #script: URL;
  readonly #slots: (WorkerSlot | null)[];
  readonly #earlyDeaths: number[];
  readonly #respawnTimers = new Set<NodeJS.Timeout>();
  readonly #unsubscribe: () => void;
  #material: SigningMaterial;
  #nextId = 1;
  #flushScheduled = false;
  #nextSlot = 0;
  #closing: Promise<void> | null = null;
  #readyPromise: Promise<void>;
  #readyWaiters: { resolve: () => void; reject: (err: Error) => void } | null = null;
  #pendingInitial: number;
  /** Called after requests settle while close() drains. */
  #onSettled: (() => void) | null = null;

  constructor(options: SigningPoolOptions, maxQueue: number) {
    this.#options = options;
    this.workerCount = options.workers;
    this.#maxQueue = maxQueue;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    this.#script = options.workerScript ?? new URL('./signing-worker.js', import.meta.url);
    this.#material = signingMaterialOf(options.source.current());
    this.#slots = new Array<WorkerSlot | null>(options.workers).fill(null);
    this.#earlyDeaths = new Array<number>(options.workers).fill(0);
    this.#pendingInitial = options.workers;
    this.#readyPromise = new Promise<void>((resolve, reject) => {
      this.#readyWaiters = { resolve, reject };
    });
    // ready() may never be awaited; a rejection must not become an unhandled one.
    this.#readyPromise.catch(() => undefined);
    for (let i = 0; i < options.workers; i++) this.#spawn(i);
    this.#unsubscribe = options.source.onChange((bundle) => this.#onMaterialChange(bundle));
  }

  ready(): Promise<void> {
    return this.#readyPromise;
  }

  sign(request: WorkloadCertificateRequest): Promise<IssuedCertificate> {
    if (this.#closing) return Promise.reject(closedError());
    try {
      assertWorkloadIdentity(request);
    } catch (err) {
      return Promise.reject(err);
    }
    const slot = this.#pickSlot();
    if (!slot)
      return Promise.reject(
        new WardenError('ERR_SIGNING_FAILED', 'no signing worker is available'),
      );
    if (slot.inFlight.size >= this.#maxQueue) {
      return Promise.reject(
        new WardenError('ERR_OVERLOADED', 'the signing queue is full; retry with backoff', {
          details: { queueLimit: this.#maxQueue },
        }),
      );
    }
    const id = this.#nextId++;
    // A copy of exactly the CSR bytes: a Buffer view would clone its whole (pooled) backing
    // store; the copy is then transferred, not cloned again.
    const csrPem = new Uint8Array(request.csrPem);
    slot.outgoing.push({
      id,
      csrPem,
      spiffeId: request.spiffeId,
      dnsNames: [...request.dnsNames],
      nowMs: this.#clock.now().getTime(),
    });
    this.#scheduleFlush();
    return new Promise<IssuedCertificate>((resolve, reject) => {
      slot.inFlight.set(id, { resolve, reject });
    });
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  /** Posts each worker's accumulated requests as one message (see signing-protocol.ts). */
  #flush(): void {
    this.#flushScheduled = false;
    for (const slot of this.#slots) {
      if (!slot || slot.outgoing.length === 0) continue;
      const requests = slot.outgoing;
      slot.outgoing = [];
      const message: ToSigningWorker = { type: 'sign', requests };
      // Each csrPem was made by `new Uint8Array(...)` in sign(): a plain, exact ArrayBuffer.
      slot.worker.postMessage(
        message,
        requests.map((r) => r.csrPem.buffer as ArrayBuffer),
      );
    }
  }

  close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#shutdown();
    return this.#closing;
  }

  /** Least-loaded live worker; ties go round-robin so idle workers share the load. */
  #pickSlot(): WorkerSlot | null {
    let best: WorkerSlot | null = null;
    const n = this.#slots.length;
    for (let k = 0; k < n; k++) {
      const slot = this.#slots[(this.#nextSlot + k) % n];
      if (slot && !slot.stopping && (!best || slot.inFlight.size < best.inFlight.size)) best = slot;
    }
    this.#nextSlot = (this.#nextSlot + 1) % n;
    return best;
  }

  #spawn(index: number): void {
    const workerData: SigningWorkerData = {
      material: this.#material,
      profile: this.#options.profile,
    };
    const worker = new Worker(this.#script, { workerData });
    const slot = new WorkerSlot(index, worker);
    this.#slots[index] = slot;
    worker.on('message', (message: FromSigningWorker) => this.#onMessage(slot, message));
    worker.on('error', (err) =>
      this.#logger.error({ worker: index, err: describeError(err) }, 'signing worker failed'),
    );
    worker.on('messageerror', (err) =>
      this.#logger.error(
        { worker: index, err: describeError(err) },
        'signing worker message could not be decoded',
      ),
    );
    worker.on('exit', (code) => this.#onExit(slot, code));
  }

  #onMessage(slot: WorkerSlot, message: FromSigningWorker): void {
    switch (message.type) {
      case 'results': {
        for (const outcome of message.results) {
          const pending = slot.inFlight.get(outcome.id);
          slot.inFlight.delete(outcome.id);
          if (outcome.error) {
            if (outcome.error.detail !== undefined)
              this.#logger.error(
                { worker: slot.index, err: outcome.error.detail },
                'signing failed in a worker',
              );
            pending?.reject(fromWireError(outcome.error));
          } else {
            pending?.resolve(fromWireIssued(outcome.result));
          }
        }
        this.#onSettled?.();
        return;
      }
      case 'material-applied': {
        if (message.error) {
          this.#logger.error(
            { worker: slot.index, generation: message.generation, err: message.error.message },
            'signing worker could not load trust material; it refuses requests until new material arrives',
          );
        }
        if (!slot.ready) {
          slot.ready = true;
          this.#earlyDeaths[slot.index] = 0;
          if (this.#pendingInitial > 0) {
            if (message.error) this.#readyWaiters?.reject(fromWireError(message.error));
            else if (--this.#pendingInitial === 0) this.#readyWaiters?.resolve();
          }
        }
        return;
      }
    }
  }

  #onExit(slot: WorkerSlot, code: number): void {
    if (this.#slots[slot.index] === slot) this.#slots[slot.index] = null;
    const failure = slot.stopping
      ? closedError()
      : new WardenError('ERR_SIGNING_FAILED', 'the signing worker stopped unexpectedly');
    for (const pending of slot.inFlight.values()) pending.reject(failure);
    slot.inFlight.clear();
    slot.outgoing = [];
    this.#onSettled?.();
    if (slot.stopping || this.#closing) return;

    this.#logger.error(
      { worker: slot.index, exitCode: code, ready: slot.ready },
      'signing worker exited; replacing it',
    );
    if (!slot.ready && this.#pendingInitial > 0) {
      this.#readyWaiters?.reject(
        new WardenError(
          'ERR_SIGNING_FAILED',
          `signing worker ${slot.index} exited (code ${code}) before it was ready`,
        ),
      );
    }
    const deaths = slot.ready ? 0 : (this.#earlyDeaths[slot.index] ?? 0) + 1;
    this.#earlyDeaths[slot.index] = deaths;
    const delay = deaths === 0 ? 0 : Math.min(MAX_RESPAWN_DELAY_MS, 50 * 2 ** deaths);
    if (delay === 0) {
      this.#spawn(slot.index);
      return;
    }
    const timer = setTimeout(() => {
      this.#respawnTimers.delete(timer);
      if (!this.#closing) this.#spawn(slot.index);
    }, delay);
    this.#respawnTimers.add(timer);
  }

  #onMaterialChange(bundle: TrustBundle): void {
    // Requests accepted before the change go out first, so they keep their place before the
    // material message in each port's order.
    this.#flush();
    this.#material = signingMaterialOf(bundle);
    const message: ToSigningWorker = { type: 'material', material: this.#material };
    for (const slot of this.#slots) if (slot && !slot.stopping) slot.worker.postMessage(message);
  }

  async #shutdown(): Promise<void> {
    this.#unsubscribe();
    for (const timer of this.#respawnTimers) clearTimeout(timer);
    this.#respawnTimers.clear();
    await this.#drain();
    const live = this.#slots.filter((s): s is WorkerSlot => s !== null);
    await Promise.all(
      live.map(async (slot) => {
        slot.stopping = true;
        await slot.worker.terminate();
      }),
    );
    if (this.#pendingInitial > 0) this.#readyWaiters?.reject(closedError());
  }

  #inFlightCount(): number {
    let n = 0;
    for (const slot of this.#slots) n += slot?.inFlight.size ?? 0;
    return n;
  }

  /** Resolves when nothing is in flight, or after closeTimeoutMs (workers are then terminated). */
  #drain(): Promise<void> {
    if (this.#inFlightCount() === 0) return Promise.resolve();
    const timeoutMs = this.#options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#logger.warn(
          { inFlight: this.#inFlightCount() },
          'signing pool close timed out; stopping workers with requests in flight',
        );
        this.#onSettled = null;
        resolve();
      }, timeoutMs);
      this.#onSettled = () => {
        if (this.#inFlightCount() > 0) return;
        clearTimeout(timer);
        this.#onSettled = null;
        resolve();
      };
    });
  }
}
