/**
 * Node options `warden serve` runs with: the image's /sentry launcher passes them (Dockerfile,
 * checked by test/unit/cli/serve-node-options.test.ts) and bench/targets.ts starts the server
 * with them, as the image does.
 *
 * --max-semi-space-size=4 caps the main isolate's young generation at 2 × 4 MB. Under
 * sustained load every queued request's objects survive a few scavenges, and V8 answers by
 * growing the young generation to 2 × 16 MB; capped, peak RSS at 256 in flight went from
 * 147-152 MB to 129-130 MB (issue 7: ≤ 150 MB), with CPU per certificate within noise. V8
 * sizes the young generation when the isolate is created, so this cannot be set from inside
 * the process; the signing workers get theirs from resourceLimits (signing-pool.ts).
 */
export const SERVE_NODE_OPTIONS: readonly string[] = Object.freeze(['--max-semi-space-size=4']);
