import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../../src/shared/atomic-file.js';
import { MAX_SECRET_VALUE_BYTES } from '../../../src/secrets/secret-name.js';
import type { FileSecretStore } from '../../../src/secrets/stores/file/file-secret-store.js';
import { createFileSecretStore } from '../../../src/secrets/stores/file/file-secret-store.js';
import { parseSecretsFile } from '../../../src/secrets/stores/file/secrets-file-parser.js';
import type { SecretStore } from '../../../src/secrets/secret-store.js';
import { bufferLogger } from '../../support/log-buffer.js';
import { rejectionCode, storeFactoryArgs } from '../../support/store-context.js';
import { makeTempDir } from '../../support/temp-directory.js';
import { waitFor } from '../../support/wait-for.js';

const FILE = 'secrets.json';

describe('secrets file parsing', () => {
  const nested = { redis: { password: 'pw', port: 6379, tls: true }, arr: ['x', { y: 'z' }], top: 'v', gone: null };
  it.each([
    [
      'flattens nested objects and arrays with ":" when single-valued',
      { nestedSeparator: ':', multiValued: false },
      {
        'redis:password': { 'redis:password': 'pw' },
        'redis:port': { 'redis:port': '6379' },
        'redis:tls': { 'redis:tls': 'true' },
        'arr:0': { 'arr:0': 'x' },
        'arr:1:y': { 'arr:1:y': 'z' },
        top: { top: 'v' },
      },
    ],
    [
      'uses the configured nestedSeparator',
      { nestedSeparator: '.', multiValued: false },
      {
        'redis.password': { 'redis.password': 'pw' },
        'redis.port': { 'redis.port': '6379' },
        'redis.tls': { 'redis.tls': 'true' },
        'arr.0': { 'arr.0': 'x' },
        'arr.1.y': { 'arr.1.y': 'z' },
        top: { top: 'v' },
      },
    ],
    [
      'makes top-level keys the secrets and flattens below them when multiValued',
      { nestedSeparator: ':', multiValued: true },
      {
        redis: { password: 'pw', port: '6379', tls: 'true' },
        arr: { '0': 'x', '1:y': 'z' },
        top: { top: 'v' },
      },
    ],
  ])('%s', (_name, layout, expected) => {
    const parsed = parseSecretsFile(JSON.stringify(nested), layout, 'f.json');
    expect(Object.fromEntries(parsed.secrets)).toEqual(expected);
  });

  it('refuses a file that is not JSON without quoting any of its text', () => {
    const text = '{"redis-password": hunter2-not-json}';
    let message = '';
    try {
      parseSecretsFile(text, { nestedSeparator: ':', multiValued: false }, 'f.json');
    } catch (err) {
      message = (err as Error).message;
      expect((err as { code?: string }).code).toBe('ERR_SECRET_STORE_CONFIG');
    }
    expect(message).toContain('not valid JSON');
    expect(message).not.toContain('hunter2');
  });

  it.each([['an array', '[1,2]'], ['a string', '"x"'], ['null', 'null']])('refuses %s at the top level', (_what, text) => {
    expect(() => parseSecretsFile(text, { nestedSeparator: ':', multiValued: false }, 'f.json')).toThrow(/JSON object/);
  });
});

describe('secretstores.local.file', () => {
  let dir: { path: string; remove(): Promise<void> };
  const opened: SecretStore[] = [];
  const open = async (metadata: Record<string, string>, logger = bufferLogger().logger): Promise<SecretStore> => {
    const store = await createFileSecretStore(...storeFactoryArgs('secretstores.local.file', metadata, { logger, workingDirectory: dir.path }));
    opened.push(store);
    return store;
  };
  beforeAll(async () => {
    dir = await makeTempDir('file-store-unit');
  });
  afterAll(async () => {
    for (const store of opened) await store.close();
    await dir.remove();
  });

  it('resolves a relative secretsFile against the working directory', async () => {
    await mkdir(path.join(dir.path, 'rel'), { recursive: true });
    await writeFile(path.join(dir.path, 'rel', FILE), JSON.stringify({ a: 'b' }));
    const store = await open({ secretsFile: `rel/${FILE}` });
    expect(await store.get('a')).toEqual({ a: 'b' });
  });

  it('reports a missing secretsFile field and a missing file as configuration errors', async () => {
    expect(await rejectionCode(open({}))).toBe('ERR_SECRET_STORE_CONFIG');
    expect(await rejectionCode(open({ secretsFile: 'nope.json' }))).toBe('ERR_SECRET_STORE_CONFIG');
  });

  it('refuses a multiValued value that is not a boolean', async () => {
    await writeFile(path.join(dir.path, 'mv.json'), '{}');
    expect(await rejectionCode(open({ secretsFile: 'mv.json', multiValued: 'sometimes' }))).toBe('ERR_SECRET_STORE_CONFIG');
  });

  it('refuses a secretsFile that is a symlink pointing outside its directory', async () => {
    const outside = await makeTempDir('outside');
    try {
      await writeFile(path.join(outside.path, 'shadow.json'), JSON.stringify({ root: 'x' }));
      const linkDir = path.join(dir.path, 'linked');
      await mkdir(linkDir, { recursive: true });
      await symlink(path.join(outside.path, 'shadow.json'), path.join(linkDir, FILE));
      const args = storeFactoryArgs('secretstores.local.file', { secretsFile: path.join(linkDir, FILE) });
      await expect(createFileSecretStore(...args)).rejects.toMatchObject({
        code: 'ERR_SECRET_STORE_CONFIG',
        message: expect.stringMatching(/symlink that points outside its directory/),
      });
    } finally {
      await outside.remove();
    }
  });

  it('accepts a symlink that stays inside its directory (the Kubernetes ..data layout)', async () => {
    const mounted = path.join(dir.path, 'mounted');
    await mkdir(path.join(mounted, '..2026_01_01'), { recursive: true });
    await writeFile(path.join(mounted, '..2026_01_01', FILE), JSON.stringify({ k: 'v' }));
    await symlink('..2026_01_01', path.join(mounted, '..data'));
    await symlink(path.join('..data', FILE), path.join(mounted, FILE));
    const store = await open({ secretsFile: path.join(mounted, FILE) });
    expect(await store.get('k')).toEqual({ k: 'v' });
  });

  it('never hands out a 10 MiB value, and still serves the other secrets', async () => {
    const big = 'A'.repeat(10 * 1024 * 1024);
    await writeFile(path.join(dir.path, 'big.json'), JSON.stringify({ huge: big, small: 'ok' }));
    const store = await open({ secretsFile: 'big.json' });
    expect(await rejectionCode(store.get('huge'))).toBe('ERR_SECRET_TOO_LARGE');
    expect(await store.get('small')).toEqual({ small: 'ok' });
    const all = await store.bulkGet();
    expect(Object.keys(all)).toEqual(['small']);
  });

  it('serves a value exactly at the size limit', async () => {
    const atLimit = 'b'.repeat(MAX_SECRET_VALUE_BYTES);
    await writeFile(path.join(dir.path, 'limit.json'), JSON.stringify({ edge: atLimit }));
    const store = await open({ secretsFile: 'limit.json' });
    expect((await store.get('edge')).edge).toHaveLength(MAX_SECRET_VALUE_BYTES);
  });

  it('answers ERR_SECRET_NOT_FOUND for a missing key', async () => {
    await writeFile(path.join(dir.path, 'one.json'), JSON.stringify({ present: 'x' }));
    const store = await open({ secretsFile: 'one.json' });
    expect(await rejectionCode(store.get('absent'))).toBe('ERR_SECRET_NOT_FOUND');
  });

  it('reloads when the file is replaced, and reports the change to listeners', async () => {
    const file = path.join(dir.path, 'reload.json');
    await writeFile(file, JSON.stringify({ 'redis-password': 'first' }));
    const store = (await open({ secretsFile: file })) as FileSecretStore;
    let changes = 0;
    store.onSecretsChanged(() => changes++);
    await writeFileAtomic(file, JSON.stringify({ 'redis-password': 'second' }));
    await waitFor(async () => ((await store.get('redis-password'))['redis-password'] === 'second' ? true : undefined), 5000, 'reload');
    expect(changes).toBeGreaterThanOrEqual(1);
  });

  it('keeps the last good secrets when the file changes to something unparsable, and logs no content', async () => {
    const file = path.join(dir.path, 'broken.json');
    await writeFile(file, JSON.stringify({ token: 'good-value-1' }));
    const log = bufferLogger();
    const store = (await open({ secretsFile: file }, log.logger)) as FileSecretStore;
    await writeFile(file, '{"token": "leaky-partial-value');
    await waitFor(() => (log.text().includes('could not be loaded') ? true : undefined), 5000, 'reload error log');
    expect(await store.get('token')).toEqual({ token: 'good-value-1' });
    expect(log.text()).not.toContain('leaky-partial-value');
    expect(log.text()).not.toContain('good-value-1');
  });

  it('keeps the last good secrets when the file is removed', async () => {
    const file = path.join(dir.path, 'removed.json');
    await writeFile(file, JSON.stringify({ keep: 'me' }));
    const store = (await open({ secretsFile: file })) as FileSecretStore;
    await rm(file);
    expect(await store.checkForChanges()).toBe(false);
    expect(await store.get('keep')).toEqual({ keep: 'me' });
  });

  it('refuses to follow a symlink swapped in for the file after start-up', async () => {
    const outside = await makeTempDir('outside-swap');
    try {
      const file = path.join(dir.path, 'swap.json');
      await writeFile(file, JSON.stringify({ mine: 'ok' }));
      const store = (await open({ secretsFile: file })) as FileSecretStore;
      await writeFile(path.join(outside.path, 'evil.json'), JSON.stringify({ mine: 'evil' }));
      await symlink(path.join(outside.path, 'evil.json'), path.join(dir.path, 'swap.tmp'));
      await rename(path.join(dir.path, 'swap.tmp'), file);
      expect(await store.checkForChanges()).toBe(false);
      expect(await store.get('mine')).toEqual({ mine: 'ok' });
    } finally {
      await outside.remove();
    }
  });

  it('answers ERR_SECRET_STORE_UNAVAILABLE after close', async () => {
    await writeFile(path.join(dir.path, 'closed.json'), JSON.stringify({ a: 'b' }));
    const store = await open({ secretsFile: 'closed.json' });
    await store.close();
    expect(store.ready()).toBe(false);
    expect(await rejectionCode(store.get('a'))).toBe('ERR_SECRET_STORE_UNAVAILABLE');
  });
});
