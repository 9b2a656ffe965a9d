import { isWardenError, WardenError, describeError, type ErrorCode } from '../../shared/errors.js';
import type { IssuedCertificate, LeafProfileOptions } from '../certificate-signer.js';
import type { SigningMaterial } from './signing-material.js';

/** What a signing worker is started with (its `workerData`). */
export interface SigningWorkerData {
  readonly material: SigningMaterial;
  readonly profile: LeafProfileOptions;
}

/** One signing request as it crosses into a worker. */
export interface WireSignRequest {
  readonly id: number;
  readonly csrPem: Uint8Array;
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  /** The pool's clock at request time: leaf dates never depend on the worker's clock. */
  readonly nowMs: number;
}

/**
 * Messages from the pool to a worker, delivered in the order they were posted. Requests go
 * in batches: each postMessage wakes the other thread (measured ≈ 20-40 µs on a busy 2-core
 * machine), so the pool sends what accumulated in one tick as one message.
 */
export type ToSigningWorker =
  | { readonly type: 'material'; readonly material: SigningMaterial }
  | { readonly type: 'sign'; readonly requests: readonly WireSignRequest[] };

/** An error as it crosses the thread boundary; rebuilt as a WardenError on the other side. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
  /** For the pool's log only (never returned to callers): what a non-Warden error said. */
  readonly detail?: string;
}

export interface WireIssuedCertificate {
  readonly certificateChainPem: string;
  readonly trustAnchorsPem: readonly string[];
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly serialHex: string;
  readonly generation: number;
}

export type WireSignResult =
  | { readonly id: number; readonly result: WireIssuedCertificate; readonly error?: undefined }
  | { readonly id: number; readonly error: WireError; readonly result?: undefined };

/** Messages from a worker to the pool. */
export type FromSigningWorker =
  /** Answer to the initial material and to each `material` message, in order. */
  | { readonly type: 'material-applied'; readonly generation: number; readonly error?: WireError }
  /** Results, batched per turn of the worker's event loop (same reason as requests). */
  | { readonly type: 'results'; readonly results: readonly WireSignResult[] };

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

export function toWireIssued(issued: IssuedCertificate): WireIssuedCertificate {
  return {
    certificateChainPem: issued.certificateChainPem,
    trustAnchorsPem: [...issued.trustAnchorsPem],
    notBeforeMs: issued.notBefore.getTime(),
    notAfterMs: issued.notAfter.getTime(),
    serialHex: issued.serialHex,
    generation: issued.generation,
  };
}

export function fromWireIssued(wire: WireIssuedCertificate): IssuedCertificate {
  return {
    certificateChainPem: wire.certificateChainPem,
    trustAnchorsPem: wire.trustAnchorsPem,
    notBefore: new Date(wire.notBeforeMs),
    notAfter: new Date(wire.notAfterMs),
    serialHex: wire.serialHex,
    generation: wire.generation,
  };
}
