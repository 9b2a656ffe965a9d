import { isWardenError, WardenError, describeError, type ErrorCode } from '../../shared/errors.js';
import type { LeafProfileOptions } from '../certificate-signer.js';
import type { SigningMaterial } from './signing-material.js';

/** What a signing worker is started with (its `workerData`). */
export interface SigningWorkerData {
  readonly material: SigningMaterial;
  readonly profile: LeafProfileOptions;
}

/**
 * Requests as they cross into a worker, packed: one message per batch, columns instead of
 * one object per request, and every CSR in one transferred buffer. Each postMessage wakes
 * the other thread and structured cloning pays per object and per property, so this costs
 * ≈ 1-2 µs per request where one object per request cost ≈ 5 µs (measured; see
 * bench/README.md).
 */
export interface WireSignBatch {
  readonly type: 'sign';
  readonly ids: readonly number[];
  /** The pool's clock at request time: leaf dates never depend on the worker's clock. */
  readonly nowMs: readonly number[];
  readonly spiffeIds: readonly string[];
  /** Per request; empty for most workloads. */
  readonly dnsNames: ReadonlyArray<readonly string[]>;
  /** Every CSR, back to back; request i is csrBytes[csrEnds[i-1] ?? 0 .. csrEnds[i]]. */
  readonly csrBytes: Uint8Array;
  readonly csrEnds: Uint32Array;
}

/** Messages from the pool to a worker, delivered in the order they were posted. */
export type ToSigningWorker =
  { readonly type: 'material'; readonly material: SigningMaterial } | WireSignBatch;

/** An error as it crosses the thread boundary; rebuilt as a WardenError on the other side. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
  /** For the pool's log only (never returned to callers): what a non-Warden error said. */
  readonly detail?: string;
}

/**
 * Results, packed like requests: one column per field of a minted leaf (see MintedLeaf);
 * the chain and anchors, the same for every leaf of a generation, stay in the pool.
 */
export interface WireResults {
  readonly type: 'results';
  /** Batches whose every request has an answer in this or an earlier message. */
  readonly completedBatches: number;
  readonly ids: readonly number[];
  readonly leafPems: readonly string[];
  readonly notBeforeMs: readonly number[];
  readonly notAfterMs: readonly number[];
  readonly serialHex: readonly string[];
  readonly generations: readonly number[];
  readonly failures: ReadonlyArray<{ readonly id: number; readonly error: WireError }>;
}

/** Messages from a worker to the pool. */
export type FromSigningWorker =
  /** Answer to the initial material and to each `material` message, in order. */
  | { readonly type: 'material-applied'; readonly generation: number; readonly error?: WireError }
  /** Results, batched per turn of the worker's event loop. */
  | WireResults;

/** Coded errors keep code and message; anything else becomes a generic signing failure. */
export function toWireError(err: unknown): WireError {
  if (isWardenError(err)) return { code: err.code, message: err.message };
  return { code: 'ERR_SIGNING_FAILED', message: 'signing failed', detail: describeError(err) };
}

export function fromWireError(wire: WireError): WardenError {
  return new WardenError(
    wire.code,
    wire.message,
    wire.detail === undefined ? {} : { cause: new Error(wire.detail) },
  );
}
