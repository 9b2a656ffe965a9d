// `npm run docs`: rewrites the generated tables in README.md.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderReadme } from './readme-sections.js';

const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md');
const before = readFileSync(file, 'utf8');
const after = await renderReadme(before);
if (after !== before) writeFileSync(file, after);
process.stdout.write(
  after === before ? 'README.md is up to date\n' : 'README.md tables rewritten\n',
);
