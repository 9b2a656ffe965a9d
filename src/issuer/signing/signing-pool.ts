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
  issuedCertificateOf,
  sharedResponsePiecesOf,
  type LeafIssuer,
  type SharedResponsePieces,
} from './leaf-signer.js';
import { signingMaterialOf, type SigningMaterial } from './signing-material.js';
import {
  fromWireError,
  type FromSigningWorker,
  type SigningWorkerData,
  type ToSigningWorker,
  type WireResults,
  type WireSignBatch,
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
  /**
   * With workers: sign in the calling thread when the pool has had nothing in flight for
   * this many milliseconds of `clock` time, and while no worker is ready yet (default:
   * never). A lone request then costs no thread hops (two wake-ups, ≈ 1-2 ms on an idle
   * machine: issue 7's idle latency), and certificates can be issued while the workers are
   * still starting (cold start). Requests that follow each other closely, and any load, go
   * to the workers: the calling thread (the gRPC edge) is not where signing scales. The
   * material-change invariant holds: the calling thread's issuer is replaced synchronously
   * by the change listener, like the workers' is by their ordered message.
   */
  readonly signInCallingThreadWhenIdleMs?: number;
  /**
   * V8 young-generation limit of each worker isolate, in MB (default 4). Each request
   * allocates a few KB that die young; a small nursery keeps the peak RSS of the whole
   * process down (issue 7: ≤ 150 MB under load) for a little more scavenging.
   */
  readonly workerYoungGenerationMb?: number;
  /**
   * Start the worker threads only when startWorkers() is called, or when a request cannot be
   * signed in the calling thread, whichever comes first (default false: at construction).
   * Each worker's start costs ≈ 60-70 ms of CPU; on a 2-core machine, starting them while the
   * process is still loading competes with its path to the first certificate (issue 7: cold
   * start). With signInCallingThreadWhenIdleMs the calling thread signs until they are ready.
   */
  readonly deferWorkerStart?: boolean;
}

export interface SigningPool extends CertificateSigner {
  /**
   * Resolves when every worker has loaded the current material; rejects if one cannot.
   * With deferWorkerStart, the workers start when this is called, if they have not yet.
   */
  ready(): Promise<void>;
  /** Starts the worker threads now if they were deferred (idempotent). */
  startWorkers(): void;
  /** Worker threads configured (0 = in-thread). */
  readonly workerCount: number;
}

export const DEFAULT_MAX_QUEUE = 256;
export const DEFAULT_WORKER_YOUNG_GENERATION_MB = 4;

/**
 * Batches posted to a worker and not yet answered, at most. While a worker has this many,
 * new requests wait in the pool and leave together when a batch comes back: under load a
 * worker always has its next batch queued, and each message carries many requests.
 */
const MAX_BATCHES_IN_FLIGHT = 2;

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
  /**
   * The material generation when the request was posted (-1 before): the worker signs it
   * with exactly that generation, because every earlier material message precedes it in the
   * port and every later one follows it.
   */
  postedUnder: number;
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
 * Requests still waiting in the pool for a batch slot are posted before the material
 * message. The calling thread's issuer (signInCallingThreadWhenIdleMs) is replaced by the
 * same listener, synchronously, and dropped if the new material cannot be loaded.
 *
 * Requests travel in batches (one message per event-loop turn, at most two unanswered per
 * worker) and come back as the minted leaf only; the chain and anchors of the generation it
 * was posted under are added here (signing-protocol.ts).
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
  const idleMs = options.signInCallingThreadWhenIdleMs;
  if (idleMs !== undefined && !(Number.isFinite(idleMs) && idleMs >= 0))
    throw new TypeError('signInCallingThreadWhenIdleMs must be zero or more milliseconds');
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
    startWorkers(): void {
      // No threads to start: this pool signs in the calling thread.
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
  /** Requests accepted but not posted yet, as the columns of the next WireSignBatch. */
  outgoing = new OutgoingBatch();
  /** Batches posted and not yet complete (see MAX_BATCHES_IN_FLIGHT). */
  batchesInFlight = 0;
  ready = false;
  /** Set when the pool terminates it on purpose (close), so exit is not a crash. */
  stopping = false;

  constructor(index: number, worker: Worker) {
    this.index = index;
    this.worker = worker;
  }
}

class OutgoingBatch {
  readonly ids: number[] = [];
  readonly nowMs: number[] = [];
  readonly spiffeIds: string[] = [];
  readonly dnsNames: (readonly string[])[] = [];
  readonly csrs: Uint8Array[] = [];
  csrBytes = 0;

  get size(): number {
    return this.ids.length;
  }

  add(id: number, request: WorkloadCertificateRequest, nowMs: number): void {
    this.ids.push(id);
    this.nowMs.push(nowMs);
    this.spiffeIds.push(request.spiffeId);
    this.dnsNames.push(request.dnsNames.length === 0 ? NO_DNS_NAMES : [...request.dnsNames]);
    this.csrs.push(request.csrPem);
    this.csrBytes += request.csrPem.length;
  }

  /** The wire message; the CSR buffer and ends are new and transferable. */
  toMessage(): WireSignBatch {
    const csrBytes = new Uint8Array(this.csrBytes);
    const csrEnds = new Uint32Array(this.csrs.length);
    let offset = 0;
    this.csrs.forEach((csr, i) => {
      csrBytes.set(csr, offset);
      offset += csr.length;
      csrEnds[i] = offset;
    });
    return {
      type: 'sign',
      ids: this.ids,
      nowMs: this.nowMs,
      spiffeIds: this.spiffeIds,
      dnsNames: this.dnsNames,
      csrBytes,
      csrEnds,
    };
  }
}

const NO_DNS_NAMES: readonly string[] = Object.freeze([]);

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
  /** signInCallingThreadWhenIdleMs, or null (never). */
  readonly #callingThreadIdleMs: number | null;
  /** Chain and anchors of the current generation and of each one with requests posted. */
  readonly #pieces = new Map<number, SharedResponsePieces>();
  /** Requests posted and unanswered, per generation they were posted under. */
  readonly #postedPerGeneration = new Map<number, number>();
  #material: SigningMaterial;
  /** The calling thread's issuer (signInCallingThreadWhenIdleMs), replaced on every change. */
  #localIssuer: LeafIssuer | null = null;
  #localBusy = 0;
  #inFlightTotal = 0;
  #started = false;
  /** Clock ms when the last request settled with nothing else in flight; null while busy. */
  #idleSince: number | null;
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
    this.#callingThreadIdleMs = options.signInCallingThreadWhenIdleMs ?? null;
    this.#idleSince = this.#clock.now().getTime();
    const bundle = options.source.current();
    this.#material = signingMaterialOf(bundle);
    this.#pieces.set(bundle.generation, sharedResponsePiecesOf(bundle));
    this.#applyLocally(bundle);
    this.#slots = new Array<WorkerSlot | null>(options.workers).fill(null);
    this.#earlyDeaths = new Array<number>(options.workers).fill(0);
    this.#pendingInitial = options.workers;
    this.#readyPromise = new Promise<void>((resolve, reject) => {
      this.#readyWaiters = { resolve, reject };
    });
    // ready() may never be awaited; a rejection must not become an unhandled one.
    this.#readyPromise.catch(() => undefined);
    if (!options.deferWorkerStart) this.startWorkers();
    this.#unsubscribe = options.source.onChange((bundle) => this.#onMaterialChange(bundle));
  }

  ready(): Promise<void> {
    this.startWorkers();
    return this.#readyPromise;
  }

  startWorkers(): void {
    if (this.#started || this.#closing) return;
    this.#started = true;
    for (let i = 0; i < this.workerCount; i++) this.#spawn(i);
  }

  sign(request: WorkloadCertificateRequest): Promise<IssuedCertificate> {
    if (this.#closing) return Promise.reject(closedError());
    try {
      assertWorkloadIdentity(request);
    } catch (err) {
      return Promise.reject(err);
    }
    const nowMs = this.#clock.now().getTime();
    const local = this.#localIssuer;
    if (local && this.#localBusy === 0 && this.#callingThreadIdleMs !== null) {
      const idle = this.#idleSince !== null && nowMs - this.#idleSince >= this.#callingThreadIdleMs;
      if (idle || !this.#slots.some((slot) => slot?.ready && !slot.stopping))
        return this.#signLocally(local, request, nowMs);
    }
    this.startWorkers();
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
    slot.outgoing.add(id, request, nowMs);
    this.#inFlightTotal++;
    this.#idleSince = null;
    this.#scheduleFlush();
    return new Promise<IssuedCertificate>((resolve, reject) => {
      slot.inFlight.set(id, { resolve, reject, postedUnder: -1 });
    });
  }

  /** Keeps the calling thread's issuer on the current material (signInCallingThreadWhenIdleMs). */
  #applyLocally(bundle: TrustBundle): void {
    if (this.#callingThreadIdleMs === null) return;
    try {
      this.#localIssuer = createLeafIssuer(bundle, this.#options.profile);
    } catch {
      // Fail closed here too; the workers report (and refuse) the same material.
      this.#localIssuer = null;
    }
  }

  #signLocally(
    issuer: LeafIssuer,
    request: WorkloadCertificateRequest,
    nowMs: number,
  ): Promise<IssuedCertificate> {
    this.#localBusy++;
    this.#idleSince = null;
    const settled = (): void => {
      this.#localBusy--;
      this.#noteIfIdle();
      this.#onSettled?.();
    };
    return issuer.issue(request, nowMs).then(
      (issued) => {
        settled();
        return issued;
      },
      (err: unknown) => {
        settled();
        throw err;
      },
    );
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // After the current I/O phase, so every request parsed from the same reads goes in one
    // message (a microtask flushed after each gRPC call: batches of one).
    setImmediate(() => {
      this.#flushScheduled = false;
      for (const slot of this.#slots) if (slot) this.#post(slot, false);
    });
  }

  /** Posts a slot's accumulated requests as one message, if it may have another batch. */
  #post(slot: WorkerSlot, force: boolean): void {
    if (slot.outgoing.size === 0 || slot.stopping) return;
    if (!force && slot.batchesInFlight >= MAX_BATCHES_IN_FLIGHT) return;
    const message = slot.outgoing.toMessage();
    slot.outgoing = new OutgoingBatch();
    slot.batchesInFlight++;
    const generation = this.#material.generation;
    for (const id of message.ids) {
      const pending = slot.inFlight.get(id);
      if (pending) pending.postedUnder = generation;
    }
    this.#postedPerGeneration.set(
      generation,
      (this.#postedPerGeneration.get(generation) ?? 0) + message.ids.length,
    );
    // Both are made by toMessage() over fresh, exact ArrayBuffers: transferred, not copied.
    slot.worker.postMessage(message, [
      message.csrBytes.buffer as ArrayBuffer,
      message.csrEnds.buffer as ArrayBuffer,
    ]);
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
    const worker = new Worker(this.#script, {
      workerData,
      resourceLimits: {
        maxYoungGenerationSizeMb:
          this.#options.workerYoungGenerationMb ?? DEFAULT_WORKER_YOUNG_GENERATION_MB,
      },
    });
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
      case 'results':
        this.#onResults(slot, message);
        return;
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

  #onResults(slot: WorkerSlot, message: WireResults): void {
    slot.batchesInFlight -= message.completedBatches;
    // The next batch leaves now, before these results are handed out.
    this.#post(slot, false);
    const { ids, leafPems, notBeforeMs, notAfterMs, serialHex, generations } = message;
    for (let i = 0; i < ids.length; i++) {
      const generation = generations[i] as number;
      const pieces = this.#pieces.get(generation);
      const pending = this.#settle(slot, ids[i] as number);
      if (!pending) continue;
      if (!pieces) {
        // Cannot happen: a generation's pieces live while requests posted under it do.
        this.#logger.error({ worker: slot.index, generation }, 'no chain for a signed leaf');
        pending.reject(new WardenError('ERR_SIGNING_FAILED', 'signing failed'));
        continue;
      }
      pending.resolve(
        issuedCertificateOf(
          {
            leafPem: leafPems[i] as string,
            notBeforeMs: notBeforeMs[i] as number,
            notAfterMs: notAfterMs[i] as number,
            serialHex: serialHex[i] as string,
            generation,
          },
          pieces.chainPem,
          pieces.trustAnchorsPem,
        ),
      );
    }
    for (const { id, error } of message.failures) {
      const pending = this.#settle(slot, id);
      if (!pending) continue;
      if (error.detail !== undefined)
        this.#logger.error({ worker: slot.index, err: error.detail }, 'signing failed in a worker');
      pending.reject(fromWireError(error));
    }
    this.#onSettled?.();
  }

  #noteIfIdle(): void {
    if (this.#inFlightTotal === 0 && this.#localBusy === 0)
      this.#idleSince = this.#clock.now().getTime();
  }

  /** Takes a request out of the books; forgets a past generation's chain with its last request. */
  #settle(slot: WorkerSlot, id: number): Pending | undefined {
    const pending = slot.inFlight.get(id);
    if (!pending) return undefined;
    slot.inFlight.delete(id);
    this.#inFlightTotal--;
    this.#noteIfIdle();
    const generation = pending.postedUnder;
    if (generation !== -1) {
      const left = (this.#postedPerGeneration.get(generation) ?? 1) - 1;
      if (left > 0) this.#postedPerGeneration.set(generation, left);
      else {
        this.#postedPerGeneration.delete(generation);
        if (generation !== this.#material.generation) this.#pieces.delete(generation);
      }
    }
    return pending;
  }

  #onExit(slot: WorkerSlot, code: number): void {
    if (this.#slots[slot.index] === slot) this.#slots[slot.index] = null;
    const failure = slot.stopping
      ? closedError()
      : new WardenError('ERR_SIGNING_FAILED', 'the signing worker stopped unexpectedly');
    for (const id of [...slot.inFlight.keys()]) this.#settle(slot, id)?.reject(failure);
    slot.outgoing = new OutgoingBatch();
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
    // material message in each port's order (whatever the batch limit says).
    for (const slot of this.#slots) if (slot) this.#post(slot, true);
    const previous = this.#material.generation;
    this.#material = signingMaterialOf(bundle);
    this.#pieces.set(bundle.generation, sharedResponsePiecesOf(bundle));
    if (!this.#postedPerGeneration.has(previous)) this.#pieces.delete(previous);
    this.#applyLocally(bundle);
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

  #pendingCount(): number {
    return this.#inFlightTotal + this.#localBusy;
  }

  /** Resolves when nothing is in flight, or after closeTimeoutMs (workers are then terminated). */
  #drain(): Promise<void> {
    // Whatever waits for a batch slot goes now: nothing new will be accepted.
    for (const slot of this.#slots) if (slot) this.#post(slot, true);
    if (this.#pendingCount() === 0) return Promise.resolve();
    const timeoutMs = this.#options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#logger.warn(
          { inFlight: this.#pendingCount() },
          'signing pool close timed out; stopping workers with requests in flight',
        );
        this.#onSettled = null;
        resolve();
      }, timeoutMs);
      this.#onSettled = () => {
        if (this.#pendingCount() > 0) return;
        clearTimeout(timer);
        this.#onSettled = null;
        resolve();
      };
    });
  }
}
