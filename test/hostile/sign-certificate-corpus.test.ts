import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  hostileJwtKeys,
  startHostileWarden,
  type HostileWarden,
} from '../support/hostile-warden.js';
import {
  buildSignCorpusFixtures,
  goodClaims,
  jwksRequest,
  JWKS_SUBJECT,
  SIGN_CERTIFICATE_CORPUS,
  type SignCapability,
  type SignCorpusFixtures,
} from './sign-certificate-corpus.js';
import { memoryAfterGc, mebibytes } from '../support/memory.js';
import { attemptSign, outcomeProblems } from './sign-outcome.js';
import { joseToken } from '../support/jwt-fixtures.js';

/** What this harness (standalone `warden serve`, insecure + jwks validators) can run. */
const PROVIDED: ReadonlySet<SignCapability> = new Set<SignCapability>(['insecure', 'jwks']);

/** Corpus repetitions for the memory check, after one warm-up repetition. */
const MEMORY_REPETITIONS = 8;
/**
 * Stated bounds on growth over MEMORY_REPETITIONS runs of the corpus (about 700 requests, a
 * few dozen of them 60-70 KiB), measured after a full GC: live memory (JS heap plus Buffers/ArrayBuffers) +8 MiB (keeping one
 * large request per call would be 20+ MiB) and process RSS +48 MiB (the allocator keeps
 * freed pages; measured 10-23 MiB here without a GC).
 */
const LIVE_GROWTH_BOUND_BYTES = 8 * 1024 * 1024;
const RSS_GROWTH_BOUND_BYTES = 48 * 1024 * 1024;

describe('SignCertificate hostile-input corpus, over gRPC/TLS against an in-process warden serve', () => {
  let w: HostileWarden;
  let f: SignCorpusFixtures;

  beforeAll(async () => {
    w = await startHostileWarden();
    f = await buildSignCorpusFixtures(await hostileJwtKeys(), w.anchorsPem());
  }, 60_000);
  afterAll(async () => {
    await w?.close();
  });

  it('has at least 40 rows, every one with a unique name', () => {
    expect(SIGN_CERTIFICATE_CORPUS.length).toBeGreaterThanOrEqual(40);
    expect(new Set(SIGN_CERTIFICATE_CORPUS.map((r) => r.name)).size).toBe(
      SIGN_CERTIFICATE_CORPUS.length,
    );
  });

  for (const row of SIGN_CERTIFICATE_CORPUS) {
    const test = PROVIDED.has(row.needs) ? it : it.skip;
    const verb = 'refused' in row.expect ? 'refuses' : 'issues only the decided identity for';
    test(`${verb} ${row.name}`, async () => {
      const request = await row.request(f);
      const outcome = await attemptSign(w.client, request);
      expect(await outcomeProblems(row.expect, outcome, request, w.anchorsPem())).toEqual([]);
    });
  }

  it('never wrote a token, a private key or a CSR body into the log', () => {
    const text = w.log.text();
    // Messages may name a PEM label, but no DER in base64 (a SEQUENCE: "MI…", "MHc…") may appear.
    expect(text).not.toMatch(/(MI[GHIJ]|MHc)[A-Za-z0-9+/]{40,}/);
    expect(text).not.toContain(f.p256.pem.split('\n')[1]);
    // A JWT header segment ("eyJ...") would mean a token reached a log line.
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
  });

  it('still serves a good request afterwards, and RSS stays within the stated bound over repeated corpus runs', async () => {
    const runCorpus = async (): Promise<void> => {
      for (const row of SIGN_CERTIFICATE_CORPUS) {
        if (PROVIDED.has(row.needs)) await attemptSign(w.client, await row.request(f));
      }
    };
    await runCorpus(); // warm-up: JIT, pools, TLS session, allocator arenas
    const before = memoryAfterGc();
    for (let i = 0; i < MEMORY_REPETITIONS; i++) await runCorpus();
    const after = memoryAfterGc();
    process.stdout.write(
      `SignCertificate, growth over ${MEMORY_REPETITIONS} corpus runs: heap+external ${mebibytes(after.live - before.live)}, RSS ${mebibytes(after.rss - before.rss)}\n`,
    );
    expect(after.live - before.live).toBeLessThan(LIVE_GROWTH_BOUND_BYTES);
    expect(after.rss - before.rss).toBeLessThan(RSS_GROWTH_BOUND_BYTES);

    const request = jwksRequest(f, await joseToken(f.keys.es256, goodClaims()));
    const outcome = await attemptSign(w.client, request);
    expect(
      await outcomeProblems(
        { issued: JWKS_SUBJECT, dnsNames: [] },
        outcome,
        request,
        w.anchorsPem(),
      ),
    ).toEqual([]);
    expect((await w.healthz()).status).toBe(200);
  }, 120_000);
});
