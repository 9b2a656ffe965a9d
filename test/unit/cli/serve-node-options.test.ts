import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVE_NODE_OPTIONS } from '../../../src/cli/serve-node-options.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

describe("warden serve's Node options", () => {
  it("are the options the image's /sentry launcher starts node with", () => {
    const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    const launcher = /exec node ([^\n]*?)\/app\/dist\/src\/cli\/main\.js serve/.exec(dockerfile);
    expect(launcher).not.toBeNull();
    expect((launcher?.[1] ?? '').trim().split(/\s+/).filter(Boolean)).toEqual([
      ...SERVE_NODE_OPTIONS,
    ]);
  });

  it('are options this node accepts', () => {
    const allowed = process.allowedNodeEnvironmentFlags;
    for (const option of SERVE_NODE_OPTIONS)
      expect(allowed.has(option.split('=')[0] ?? '')).toBe(true);
  });
});
