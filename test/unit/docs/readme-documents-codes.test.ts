import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVE_FLAGS } from '../../../src/cli/serve-flags.js';
import { ERROR_CODES } from '../../../src/shared/error-codes.js';
import { renderReadme } from '../../../tools/readme-sections.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

describe('README', () => {
  it('has generated tables that match the code (run `npm run docs` when this fails)', async () => {
    expect(await renderReadme(readme)).toBe(readme);
  });

  it.each(Object.keys(ERROR_CODES))('documents the error code %s', (code) => {
    expect(readme).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|`));
  });

  it.each(Object.keys(SERVE_FLAGS))('documents the serve flag --%s', (flag) => {
    expect(readme).toContain(`\`--${flag}\``);
  });
});
