/**
 * A signing worker that dies on demand (see crash-on-demand.ts); everything else is the real
 * worker. Static imports evaluate in order, so the crash listener is registered first, and
 * both are registered before any message is dispatched. Only usable as a worker entry point.
 */
import './crash-on-demand.js';
import '../../src/issuer/signing/signing-worker.js';
