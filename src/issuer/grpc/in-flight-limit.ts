import { isIP } from 'node:net';
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { WardenError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { auditDenied } from '../audit-log.js';
import type { SentryMetrics } from '../metrics.js';
import { grpcAnswerFor } from './status-map.js';

/**
 * Bounds on SignCertificate calls being worked on at once. A start-up storm (every sidecar of
 * a cluster asking at the same moment) or one abusive caller then gets a prompt
 * RESOURCE_EXHAUSTED it can retry with backoff, instead of a queue that grows until calls
 * time out or memory runs out.
 */
export interface InFlightLimits {
  /** Calls in flight across all callers (`--max-in-flight`). */
  readonly maxInFlight: number;
  /** Calls in flight from one caller IP address (`--max-in-flight-per-caller`). */
  readonly maxInFlightPerCaller: number;
}

/**
 * 1024 calls of at most 64 KiB each bound the request bytes held at once to 64 MiB, and is
 * well above what the signing pool queues (256 per worker) so that the pool, not this cap,
 * decides under ordinary load. A sidecar sends one request at a time, so 64 at once from
 * one address means many pods behind one address (NAT, hostNetwork, or every sidecar of a
 * standalone machine on 127.0.0.1) or a caller that is not a well-behaved sidecar.
 */
export const DEFAULT_IN_FLIGHT_LIMITS: InFlightLimits = Object.freeze({
  maxInFlight: 1024,
  maxInFlightPerCaller: 64,
});

/** Upper bound accepted for either limit (a sanity check on flags, not a tuning value). */
export const MAX_IN_FLIGHT_LIMIT = 1_000_000;

/**
 * The caller's address without its port, from grpc-js's `getPeer()` text (`1.2.3.4:5678`,
 * `::1:5678`, `::ffff:1.2.3.4:5678`, or `unknown`). IPv4-mapped IPv6 counts as the IPv4
 * address, so one caller cannot get two budgets by switching address families.
 */
export function callerAddressOf(peer: string): string {
  const unbracket = (text: string): string =>
    text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  let address = unbracket(peer);
  const colon = peer.lastIndexOf(':');
  if (colon > 0 && /^\d+$/.test(peer.slice(colon + 1))) {
    const host = unbracket(peer.slice(0, colon));
    if (isIP(host) !== 0) address = host;
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? (mapped[1] as string) : address.toLowerCase();
}

/** Counts calls in flight, overall and per caller address. */
export class InFlightLimiter {
  readonly limits: InFlightLimits;
  #total = 0;
  readonly #byCaller = new Map<string, number>();

  constructor(limits: InFlightLimits) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < 1 || value > MAX_IN_FLIGHT_LIMIT)
        throw new TypeError(`${name} must be a whole number from 1 to ${MAX_IN_FLIGHT_LIMIT}`);
    }
    this.limits = Object.freeze({ ...limits });
  }

  /** Calls in flight now (overall, or from one caller address). */
  inFlight(caller?: string): number {
    return caller === undefined ? this.#total : (this.#byCaller.get(caller) ?? 0);
  }

  /**
   * Takes a slot for `caller`, or throws ERR_OVERLOADED naming the limit that was reached.
   * The returned function gives the slot back; calling it more than once is harmless.
   */
  acquire(caller: string): () => void {
    if (this.#total >= this.limits.maxInFlight) {
      throw new WardenError(
        'ERR_OVERLOADED',
        `the CA is working on ${this.#total} requests, its limit (--max-in-flight ${this.limits.maxInFlight}); retry with backoff`,
      );
    }
    const mine = this.#byCaller.get(caller) ?? 0;
    if (mine >= this.limits.maxInFlightPerCaller) {
      throw new WardenError(
        'ERR_OVERLOADED',
        `${mine} requests from ${caller} are already in flight, the per-caller limit (--max-in-flight-per-caller ${this.limits.maxInFlightPerCaller}); retry with backoff`,
      );
    }
    this.#total++;
    this.#byCaller.set(caller, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#byCaller.get(caller) ?? 1) - 1;
      if (left <= 0) this.#byCaller.delete(caller);
      else this.#byCaller.set(caller, left);
    };
  }
}

type UnaryHandler<Req, Res> = (
  call: ServerUnaryCall<Req, Res>,
  callback: sendUnaryData<Res>,
) => void;

/**
 * Wraps a unary handler so that it runs only with a slot from `limiter`, held until the
 * handler answers. A refused call is answered at once (RESOURCE_EXHAUSTED), counted in the
 * metrics and audited like any other denial; the request is never looked at.
 */
export function limitInFlight<Req, Res>(
  handler: UnaryHandler<Req, Res>,
  limiter: InFlightLimiter,
  deps: { readonly logger: Logger; readonly metrics: SentryMetrics },
): UnaryHandler<Req, Res> {
  return (call, callback) => {
    const peer = call.getPeer();
    let release: () => void;
    try {
      release = limiter.acquire(callerAddressOf(peer));
    } catch (err) {
      deps.metrics.signRequestReceived();
      deps.metrics.signFailed('overloaded', 0);
      const answer = grpcAnswerFor(err);
      auditDenied(deps.logger, {
        code: 'ERR_OVERLOADED',
        reason: err instanceof Error ? err.message : String(err),
        validator: null,
        peer,
      });
      callback({ code: answer.code, details: answer.details });
      return;
    }
    try {
      handler(call, (err, value, trailer, flags) => {
        release();
        callback(err, value, trailer, flags);
      });
    } catch (err) {
      release();
      throw err;
    }
  };
}
