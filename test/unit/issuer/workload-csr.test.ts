import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WORKLOAD_KEY_TYPES, generateKeyAndCsr } from '../../../src/issuer/sidecar/workload-csr.js';

describe('workload CSR builder', () => {
  it.each(WORKLOAD_KEY_TYPES)(
    'makes a %s CSR that openssl verifies, with an empty subject',
    (type) => {
      const { csrPem } = generateKeyAndCsr(type);
      const dir = mkdtempSync(path.join(tmpdir(), 'warden-csr-'));
      try {
        const file = path.join(dir, 'req.csr');
        writeFileSync(file, csrPem);
        const out = execFileSync('openssl', ['req', '-in', file, '-noout', '-verify', '-subject'], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        expect(out).toMatch(/subject=\s*$/m);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
