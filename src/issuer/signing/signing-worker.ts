/**
 * Entry point of a signing worker thread (loaded by signing-pool.ts as compiled JS).
 *
 * The worker holds one LeafIssuer at a time. Messages arrive in the order the pool posted
 * them and each handler takes the current issuer synchronously when it starts, so a `sign`
 * posted after a `material` message is always signed with that material (or refused, if the
 * material could not be loaded: the worker fails closed rather than keep the old issuer).
 *
 * Keep this file's imports small: every worker loads them at start-up (issue 7: cold start).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WardenError } from '../../shared/errors.js';
import { createLeafIssuer, type LeafIssuer, type MintedLeaf } from './leaf-signer.js';
import { trustBundleFromMaterial, type SigningMaterial } from './signing-material.js';
import {
  toWireError,
  type FromSigningWorker,
  type SigningWorkerData,
  type ToSigningWorker,
  type WireError,
  type WireSignBatch,
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

/**
 * Results leave in one message per turn of the event loop: every request of a batch finishes
 * within the microtasks after its message (the key import resolves without I/O), so one
 * setImmediate flush carries them all, and says which batches are complete (the pool sends
 * the next batch when one completes).
 */
class Outbox {
  ids: number[] = [];
  leafPems: string[] = [];
  notBeforeMs: number[] = [];
  notAfterMs: number[] = [];
  serialHex: string[] = [];
  generations: number[] = [];
  failures: { id: number; error: WireError }[] = [];
  completedBatches = 0;
  get empty(): boolean {
    return this.ids.length === 0 && this.failures.length === 0 && this.completedBatches === 0;
  }
}

let outbox = new Outbox();
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  const out = outbox;
  outbox = new Outbox();
  if (out.empty) return;
  post({
    type: 'results',
    completedBatches: out.completedBatches,
    ids: out.ids,
    leafPems: out.leafPems,
    notBeforeMs: out.notBeforeMs,
    notAfterMs: out.notAfterMs,
    serialHex: out.serialHex,
    generations: out.generations,
    failures: out.failures,
  });
}

function scheduleFlush(): void {
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

function deliverLeaf(id: number, leaf: MintedLeaf): void {
  outbox.ids.push(id);
  outbox.leafPems.push(leaf.leafPem);
  outbox.notBeforeMs.push(leaf.notBeforeMs);
  outbox.notAfterMs.push(leaf.notAfterMs);
  outbox.serialHex.push(leaf.serialHex);
  outbox.generations.push(leaf.generation);
  scheduleFlush();
}

function deliverError(id: number, error: WireError): void {
  outbox.failures.push({ id, error });
  scheduleFlush();
}

function signAll(batch: WireSignBatch): void {
  // The issuer is taken once, when the batch is handled: everything in it was posted before
  // any later `material` message.
  const current = issuer;
  const count = batch.ids.length;
  let remaining = count;
  const settled = (): void => {
    if (--remaining === 0) {
      outbox.completedBatches++;
      scheduleFlush();
    }
  };
  if (count === 0) {
    outbox.completedBatches++;
    scheduleFlush();
    return;
  }
  let start = 0;
  for (let i = 0; i < count; i++) {
    const id = batch.ids[i] as number;
    const end = batch.csrEnds[i] as number;
    const csrPem = batch.csrBytes.subarray(start, end);
    start = end;
    if (!current) {
      const reason = materialProblem ? `: ${materialProblem.message}` : '';
      deliverError(
        id,
        toWireError(
          new WardenError(
            'ERR_SIGNING_FAILED',
            `no usable trust material in this signing worker${reason}`,
          ),
        ),
      );
      settled();
      continue;
    }
    current
      .mint(
        {
          csrPem,
          spiffeId: batch.spiffeIds[i] as string,
          dnsNames: batch.dnsNames[i] as readonly string[],
        },
        batch.nowMs[i] as number,
      )
      .then(
        (leaf) => {
          deliverLeaf(id, leaf);
          settled();
        },
        (err: unknown) => {
          deliverError(id, toWireError(err));
          settled();
        },
      );
  }
}

port.on('message', (message: ToSigningWorker) => {
  if (message.type === 'material') applyMaterial(message.material);
  else signAll(message);
});

applyMaterial(initialMaterial);
