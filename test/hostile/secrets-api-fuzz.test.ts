import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { SecretsApiServer } from '../../src/secrets/api/secrets-api-server.js';
import {
  resolveComponents,
  type ResolvedResources,
} from '../../src/secrets/resolve/resolve-components.js';
import { parseSecretsConfiguration } from '../../src/secrets/secrets-configuration.js';
import { readEnv } from '../../src/shared/env.js';
import { rawRequest } from '../support/https-client.js';
import { bufferLogger } from '../support/log-buffer.js';

/**
 * Property test of the secrets API's routing and naming: arbitrary request targets built
 * from traversal pieces, encodings and random text. Every answer is one of the documented
 * statuses; a 200 carries exactly what an independent reading of the target (split on "/",
 * each segment decoded once) says the caller asked for; the denied secret never appears.
 * `npm run fuzz` runs it long (WARDEN_FUZZ=long).
 */
const LONG = process.env.WARDEN_FUZZ === 'long';
const RUNS = LONG ? Number(process.env.WARDEN_FUZZ_RUNS ?? 5000) : 150;
const SEED =
  process.env.WARDEN_FUZZ_SEED === undefined ? undefined : Number(process.env.WARDEN_FUZZ_SEED);

const SECRETS: Readonly<Record<string, string>> = {
  alpha: 'fuzz-alpha-value-1a2b',
  'with.dot': 'fuzz-dot-value-3c4d',
  denied: 'fuzz-denied-value-5e6f',
};
const DENIED_VALUE = SECRETS.denied as string;
const DOCUMENTED = new Set([200, 400, 401, 403, 404, 405, 500]);

/** What the target asks for, read without Warden's code; null when it names no secret. */
function independentReading(target: string): { store: string; name: string } | null {
  const pathPart = target.split('?')[0] as string;
  if (!pathPart.startsWith('/v1.0/secrets/')) return null;
  const segments = pathPart.slice('/v1.0/secrets/'.length).split('/');
  if (segments.length !== 2) return null;
  try {
    return {
      store: decodeURIComponent(segments[0] as string),
      name: decodeURIComponent(segments[1] as string),
    };
  } catch {
    return null;
  }
}

describe(`secrets API fuzzing: arbitrary request targets (${RUNS} runs)`, () => {
  let dir: string;
  let resources: ResolvedResources;
  let server: SecretsApiServer;
  let port: number;
  const log = bufferLogger('debug');
  const stats: Record<number, number> = {};

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'warden-secrets-fuzz-'));
    await writeFile(path.join(dir, 'secrets.json'), JSON.stringify(SECRETS));
    resources = await resolveComponents({
      manifests: [
        {
          apiVersion: 'dapr.io/v1alpha1',
          kind: 'Component',
          metadata: { name: 'files' },
          spec: {
            type: 'secretstores.local.file',
            version: 'v1',
            metadata: [{ name: 'secretsFile', value: path.join(dir, 'secrets.json') }],
          },
        },
      ],
      config: parseSecretsConfiguration(
        {
          apiVersion: 'dapr.io/v1alpha1',
          kind: 'Configuration',
          spec: { secrets: { scopes: [{ storeName: 'files', deniedSecrets: ['denied'] }] } },
        },
        'config',
      ).scopes,
      mode: 'standalone',
      env: readEnv({}),
      logger: log.logger,
    });
    // Plain HTTP on loopback: routing and naming are what is fuzzed here, not TLS.
    server = new SecretsApiServer({
      stores: resources.stores,
      scopes: resources.scopes,
      transport: { kind: 'insecure-http' },
      port: 0,
      logger: log.logger,
    });
    port = (await server.listen()).port;
  });

  afterAll(async () => {
    await server?.close();
    await resources?.close();
    await rm(dir, { recursive: true, force: true });
    process.stdout.write(`secrets fuzz statuses: ${JSON.stringify(stats)}\n`);
  });

  it('answers only documented statuses, a 200 only with what was asked for, and never the denied value', async () => {
    const piece = fc.oneof(
      fc.constantFrom(
        'files',
        'bulk',
        'alpha',
        'with.dot',
        'denied',
        'DENIED',
        'nosuch',
        '..',
        '.',
        '',
        '%2e',
        '%2E%2e',
        '%2f',
        '%2F',
        '%5c',
        '%252e',
        '%252f',
        '%00',
        '%0a',
        '%zz',
        '%',
        '%20',
        'den%69ed',
        'alp%68a',
        '/',
        '//',
        '?metadata.x=1',
        '?metadata.=',
        '#frag',
        ';',
        '+',
      ),
      fc.string({ maxLength: 12 }).map((s) => encodeURIComponent(s)),
    );
    const joined = (max: number): fc.Arbitrary<string> =>
      fc.array(piece, { minLength: 1, maxLength: max }).map((parts) => parts.join(''));
    const target = fc.oneof(
      { weight: 4, arbitrary: joined(3).map((name) => `/v1.0/secrets/files/${name}`) },
      {
        weight: 2,
        arbitrary: fc.tuple(joined(2), joined(3)).map(([s, n]) => `/v1.0/secrets/${s}/${n}`),
      },
      { weight: 1, arbitrary: joined(6).map((rest) => `/v1.0/secrets/${rest}`) },
    );
    await fc.assert(
      fc.asyncProperty(
        target,
        fc.constantFrom('GET', 'GET', 'GET', 'POST', 'HEAD'),
        async (path, method) => {
          const res = await rawRequest(port, path, { method });
          stats[res.status] = (stats[res.status] ?? 0) + 1;
          if (!DOCUMENTED.has(res.status)) throw new Error(`status ${res.status} for ${path}`);
          const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
          if (text.includes(DENIED_VALUE))
            throw new Error(`the denied value was answered for ${path}`);
          if (res.status !== 200 || method === 'HEAD') return;
          const asked = independentReading(path);
          if (!asked || asked.store !== 'files')
            throw new Error(`200 for ${path}, which names no secret of the store`);
          const expected =
            asked.name === 'bulk'
              ? { alpha: { alpha: SECRETS.alpha }, 'with.dot': { 'with.dot': SECRETS['with.dot'] } }
              : { [asked.name]: SECRETS[asked.name] };
          if (JSON.stringify(res.body) !== JSON.stringify(expected))
            throw new Error(`200 for ${path} answered ${text}`);
        },
      ),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    expect(log.text()).not.toContain(DENIED_VALUE);
    expect(log.text()).not.toContain(SECRETS.alpha);
  }, 120_000);
});
