/**
 * Entry point of a signing worker thread (loaded by signing-pool.ts as compiled JS).
 *
 * The worker holds one LeafIssuer at a time. Messages arrive in the order the pool posted
 * them and each handler takes the current issuer synchronously when it starts, so a `sign`
 * posted after a `material` message is always signed with that material (or refused, if the
 * material could not be loaded: the worker fails closed rather than keep the old issuer).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WardenError } from '../../shared/errors.js';
import { createLeafIssuer, type LeafIssuer } from './leaf-signer.js';
import { trustBundleFromMaterial, type SigningMaterial } from './signing-material.js';
import {
  toWireError,
  toWireIssued,
  type FromSigningWorker,
  type SigningWorkerData,
  type ToSigningWorker,
  type WireError,
  type WireSignRequest,
  type WireSignResult,
} from './signing-protocol.js';

if (!parentPort) throw new TypeError('signing-worker.js must run in a worker thread');
const port = parentPort;
const { material: initialMaterial, profile } = workerData as SigningWorkerData;

let issuer: LeafIssuer | null = null;
let materialProblem: WireError | null = null;

function post(message: FromSigningWorker): void {
  port.postMessage(message);
}

function applyMaterial(material: SigningMaterial): void {
  try {
    issuer = createLeafIssuer(trustBundleFromMaterial(material), profile);
    materialProblem = null;
    post({ type: 'material-applied', generation: material.generation });
  } catch (err) {
    issuer = null;
    materialProblem = toWireError(err);
    post({ type: 'material-applied', generation: material.generation, error: materialProblem });
  }
}

// Results leave in one message per turn of the event loop: every request of a batch
// finishes within the microtasks after its message (the key import resolves without I/O),
// so one setImmediate flush carries them all.
let outbox: WireSignResult[] = [];
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  const results = outbox;
  outbox = [];
  if (results.length > 0) post({ type: 'results', results });
}

function deliver(result: WireSignResult): void {
  outbox.push(result);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

function signAll(requests: readonly WireSignRequest[]): void {
  // The issuer is taken once, when the batch is handled: everything in it was posted before
  // any later `material` message.
  const current = issuer;
  for (const { id, csrPem, spiffeId, dnsNames, nowMs } of requests) {
    if (!current) {
      const reason = materialProblem ? `: ${materialProblem.message}` : '';
      deliver({
        id,
        error: toWireError(
          new WardenError(
            'ERR_SIGNING_FAILED',
            `no usable trust material in this signing worker${reason}`,
          ),
        ),
      });
      continue;
    }
    current.issue({ csrPem, spiffeId, dnsNames }, nowMs).then(
      (issued) => deliver({ id, result: toWireIssued(issued) }),
      (err: unknown) => deliver({ id, error: toWireError(err) }),
    );
  }
}

port.on('message', (message: ToSigningWorker) => {
  if (message.type === 'material') applyMaterial(message.material);
  else signAll(message.requests);
});

applyMaterial(initialMaterial);
