import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadComponents } from '../../../src/secrets/components/load-components.js';
import { metadataValueToString } from '../../../src/secrets/components/component.js';
import { makeTempDir } from '../../support/temp-directory.js';

const REDIS = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: redis
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisPassword
    secretKeyRef:
      name: redis
      key: redis-password
`;

describe('loading Component manifests', () => {
  let dir: { path: string; remove(): Promise<void> };
  beforeAll(async () => {
    dir = await makeTempDir('components');
  });
  afterAll(async () => {
    await dir.remove();
  });

  async function fixture(name: string, files: Record<string, string>): Promise<string> {
    const root = path.join(dir.path, name);
    await mkdir(root, { recursive: true });
    for (const [file, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, file)), { recursive: true });
      await writeFile(path.join(root, file), text);
    }
    return root;
  }

  it('reads .yaml, .yml and .json files and multi-document YAML, skipping other kinds and files', async () => {
    const root = await fixture('mixed', {
      'a.yaml': `${REDIS}---\napiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: cfg\n---\n---\n${REDIS.replace('name: redis\nspec', 'name: redis2\nspec')}`,
      'b.yml': REDIS.replace('name: redis\nspec', 'name: redis3\nspec'),
      'c.json': JSON.stringify({ apiVersion: 'dapr.io/v1alpha1', kind: 'Component', metadata: { name: 'env' }, spec: { type: 'secretstores.local.env' } }),
      'notes.txt': 'not a manifest',
      'sub/d.yaml': REDIS.replace('name: redis\nspec', 'name: nested\nspec'),
    });
    const loaded = await loadComponents([root]);
    expect(loaded.problems).toEqual([]);
    expect(loaded.components.map((c) => [path.relative(root, c.source), c.manifest.metadata.name])).toEqual([
      ['a.yaml#1', 'redis'],
      ['a.yaml#4', 'redis2'],
      ['b.yml', 'redis3'],
      ['c.json', 'env'],
    ]);
  });

  it('accepts a single file as the resources path', async () => {
    const root = await fixture('single', { 'redis.yaml': REDIS });
    const loaded = await loadComponents([path.join(root, 'redis.yaml')]);
    expect(loaded.components).toHaveLength(1);
  });

  it('treats Dapr’s serialised empty secretKeyRef as no reference', async () => {
    const root = await fixture('zero-ref', {
      'c.yaml': REDIS.replace('    value: localhost:6379', '    value: localhost:6379\n    secretKeyRef:\n      name: ""\n      key: ""'),
    });
    const loaded = await loadComponents([root]);
    expect(loaded.problems).toEqual([]);
  });

  it.each([
    ['a missing spec.type', REDIS.replace('  type: state.redis\n', ''), 'spec.type'],
    ['a wrong apiVersion', REDIS.replace('dapr.io/v1alpha1', 'dapr.io/v2'), 'apiVersion'],
    ['a metadata name that is not a Component name', REDIS.replace('name: redis\nspec', 'name: "../x"\nspec'), 'metadata.name'],
    ['a misspelt secretKeyRef', REDIS.replace('secretKeyRef:', 'secretKeyref:'), 'spec.metadata[1]'],
    ['an item with both value and secretKeyRef', REDIS.replace('  - name: redisPassword\n', '  - name: redisPassword\n    value: x\n'), 'spec.metadata[1]'],
    ['an item listed twice', REDIS.replace('name: redisPassword', 'name: redisHost'), 'spec.metadata[1].name'],
    ['a secretKeyRef with an empty key', REDIS.replace('key: redis-password', 'key: ""'), 'spec.metadata[1].secretKeyRef.key'],
    ['a secretKeyRef naming a traversal', REDIS.replace('name: redis\n      key', 'name: ../../etc/passwd\n      key'), 'spec.metadata[1].secretKeyRef.name'],
    ['an envRef that is not a variable name', REDIS.replace('  - name: redisHost\n    value: localhost:6379', '  - name: redisHost\n    envRef: "A=B"'), 'spec.metadata[0].envRef'],
  ])('reports %s with its file and path', async (what, text, expectedPath) => {
    const root = await fixture(`bad-${what.replace(/\W+/g, '-')}`, { 'bad.yaml': text });
    const loaded = await loadComponents([root]);
    expect(loaded.components).toEqual([]);
    expect(loaded.problems).toContainEqual(expect.objectContaining({ source: path.join(root, 'bad.yaml'), path: expectedPath }));
  });

  it('reports YAML syntax errors by line without quoting the text', async () => {
    const root = await fixture('syntax', { 'bad.yaml': 'apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: x\npassword: hunter2-plaintext: oops\n' });
    const loaded = await loadComponents([root]);
    expect(loaded.problems.length).toBeGreaterThan(0);
    for (const problem of loaded.problems) {
      expect(problem.code).toBe('ERR_COMPONENT_INVALID');
      expect(problem.message).toMatch(/not valid YAML at line \d+, column \d+/);
      expect(problem.message).not.toContain('hunter2');
    }
  });

  it('reports invalid JSON without quoting the text', async () => {
    const root = await fixture('badjson', { 'bad.json': '{"kind": "Component", "secret": hunter2-plaintext}' });
    const loaded = await loadComponents([root]);
    expect(loaded.problems).toEqual([expect.objectContaining({ code: 'ERR_COMPONENT_INVALID', message: expect.stringMatching(/not valid JSON/) })]);
    expect(loaded.problems[0]?.message).not.toContain('hunter2');
  });

  it('collects every problem from every file at once, and refuses two Components with one name', async () => {
    const root = await fixture('many', {
      'a.yaml': REDIS,
      'b.yaml': REDIS,
      'c.yaml': REDIS.replace('  type: state.redis\n', '').replace('name: redis\nspec', 'name: other\nspec'),
    });
    const loaded = await loadComponents([root, path.join(dir.path, 'does-not-exist')]);
    expect(loaded.components.map((c) => c.manifest.metadata.name)).toEqual(['redis']);
    expect(loaded.problems.map((p) => [path.basename(p.source ?? ''), p.path])).toEqual([
      ['does-not-exist', undefined],
      ['b.yaml', 'metadata.name'],
      ['c.yaml', 'spec.type'],
    ]);
    expect(loaded.rejectedNames.has('other')).toBe(true);
  });

  it.each([
    ['a string', 'abc', 'abc'],
    ['a number', 6379, '6379'],
    ['a boolean', true, 'true'],
    ['an object', { a: [1, 'b'] }, '{"a":[1,"b"]}'],
    ['null', null, ''],
  ])('turns a value that is %s into a string', (_what, value, text) => {
    expect(metadataValueToString(value)).toBe(text);
  });
});
