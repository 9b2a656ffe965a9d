import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validateServeInvocation } from '../../src/cli/serve-flags.js';
import { startWardenServer } from '../../src/cli/warden-server.js';
import { readEnv } from '../../src/shared/env.js';
import { isWardenError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { runWardenCli } from '../support/warden-child.js';

const HEADER = 'apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: hostile\n';

/** "Billion laughs" inside a Configuration: nine levels of nine aliases. */
const ALIAS_BOMB = [
  HEADER.trimEnd(),
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((c, i) => {
    const p = 'abcdefghi'[i] as string;
    return `${c}: &${c} [*${p},*${p},*${p},*${p},*${p},*${p},*${p},*${p},*${p}]`;
  }),
  'spec: {mtls: {workloadCertTTL: 24h}}',
].join('\n');

const jwks = (source: string): string =>
  `${HEADER}spec:\n  mtls:\n    tokenValidators:\n      - name: jwks\n        options: {source: ${JSON.stringify(source)}}\n`;

/**
 * Hostile Configuration files (`warden serve --config`): the file is the operator's, but a
 * mistake or a tampered file must end in a clear refusal naming the problem, never a crash,
 * a silent default, or a credential echoed back.
 */
const ROWS: ReadonlyArray<{
  readonly name: string;
  readonly yaml: string;
  /** Refused while validating the flags and file, or only when the validator is built. */
  readonly stage: 'validate' | 'start';
  readonly fragment: string;
  readonly secret?: string;
}> = [
  {
    name: 'a YAML alias bomb',
    yaml: ALIAS_BOMB,
    stage: 'validate',
    fragment: 'expands more than 50 YAML aliases',
  },
  {
    name: 'a key given twice',
    yaml: `${HEADER}spec:\n  mtls: {}\n  mtls: {}\n`,
    stage: 'validate',
    fragment: 'unique',
  },
  {
    name: 'a validator that does not exist',
    yaml: `${HEADER}spec:\n  mtls:\n    tokenValidators: [{name: exec}]\n`,
    stage: 'validate',
    fragment: '"exec" is not a validator',
  },
  {
    name: 'a negative workload certificate TTL',
    yaml: `${HEADER}spec:\n  mtls: {workloadCertTTL: -1h}\n`,
    stage: 'validate',
    fragment: 'workloadCertTTL',
  },
  {
    name: 'a JWKS source with another scheme',
    yaml: jwks('file:///etc/shadow'),
    stage: 'start',
    fragment: 'jwks validator: source scheme file: is not http or https',
  },
  {
    name: 'a JWKS URL carrying a password (never echoed)',
    yaml: jwks('https://admin:hunter2-secret@idp.example/jwks.json'),
    stage: 'start',
    fragment: 'jwks validator: source URL may not carry a user name or password',
    secret: 'hunter2-secret',
  },
];

describe('hostile Configuration files for warden serve', () => {
  let dir: string;
  let n = 0;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'warden-hostile-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function settle(
    yaml: string,
  ): Promise<{ stage: 'validate' | 'start' | 'started'; message: string }> {
    const file = path.join(dir, `config-${++n}.yaml`);
    await writeFile(file, yaml);
    const argv = [
      '--config',
      file,
      '--issuer-credentials',
      path.join(dir, `creds-${n}`),
      '--port',
      '0',
      '--healthz-port',
      '0',
      '--enable-metrics=false',
      '--listen-address',
      '127.0.0.1',
      '--workers',
      '1',
    ];
    const result = await validateServeInvocation(argv, readEnv({}));
    if (!result.ok)
      return {
        stage: 'validate',
        message: result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'),
      };
    try {
      const server = await startWardenServer(result.settings, { logger: silentLogger });
      await server.close(0);
      return { stage: 'started', message: '' };
    } catch (err) {
      if (!isWardenError(err)) throw err;
      return { stage: 'start', message: `${err.code}: ${err.message}` };
    }
  }

  it.each(ROWS)('refuses $name with a clear problem', async (row) => {
    const outcome = await settle(row.yaml);
    expect(outcome.stage).toBe(row.stage);
    expect(outcome.message).toContain(row.fragment);
    if (row.secret) expect(outcome.message).not.toContain(row.secret);
  });

  it('reports the alias bomb through the CLI as invalid settings (exit 1), not as an unexpected error', async () => {
    const file = path.join(dir, 'bomb.yaml');
    await writeFile(file, ALIAS_BOMB);
    const result = await runWardenCli(['serve', '--config', file, '--validate']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('invalid settings');
    expect(result.stderr).toContain('expands more than 50 YAML aliases');
    expect(result.stderr).not.toContain('unexpected error');
  });
});
