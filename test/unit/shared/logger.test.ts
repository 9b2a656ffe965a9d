import { describe, expect, it } from '@jest/globals';
import { auditDenied, auditFailed, auditIssued } from '../../../src/issuer/audit-log.js';
import {
  flatRecordLogger,
  REDACTED_PATHS,
  TOP_LEVEL_REDACTED_NAMES,
  type Logger,
} from '../../../src/shared/logger.js';
import { bufferLogger } from '../../support/log-buffer.js';

function lines(text: string): Record<string, unknown>[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const record = JSON.parse(line) as Record<string, unknown>;
      delete record.time;
      return record;
    });
}

describe('flatRecordLogger (top-level redaction for flat records)', () => {
  it('keeps every redacted name that is not a plain top-level name to paths that need a nested object', () => {
    for (const path of REDACTED_PATHS) {
      if (TOP_LEVEL_REDACTED_NAMES.includes(path)) continue;
      expect(/[.[]/.test(path)).toBe(true);
    }
    expect(TOP_LEVEL_REDACTED_NAMES.length).toBeGreaterThan(0);
  });

  it.each(TOP_LEVEL_REDACTED_NAMES.map((name) => [name]))(
    'redacts a top-level "%s" as the full logger does',
    (name) => {
      const full = bufferLogger('info');
      const flat = bufferLogger('info');
      const record = { [name]: 'do-not-log-me', spiffeId: 'spiffe://td/ns/default/app' };
      full.logger.info(record, 'probe');
      flatRecordLogger(flat.logger).info(record, 'probe');
      expect(full.text()).not.toContain('do-not-log-me');
      expect(flat.text()).not.toContain('do-not-log-me');
      expect(lines(flat.text())).toEqual(lines(full.text()));
    },
  );

  it('writes the audit lines exactly as the full logger does', () => {
    const write = (logger: Logger): void => {
      auditIssued(logger, {
        serialHex: '0a1b2c',
        spiffeId: 'spiffe://td/ns/default/app',
        dnsNames: ['app.default.svc'],
        notAfter: new Date('2026-01-02T03:04:05Z'),
        validator: 'insecure',
        peer: '127.0.0.1:5000',
        generation: 3,
      });
      auditDenied(logger, {
        code: 'ERR_IDENTITY_DENIED',
        reason: 'no',
        validator: 'jwks',
        peer: 'p',
      });
      auditFailed(logger, { code: null, detail: 'boom', validator: null, peer: 'p' });
    };
    const full = bufferLogger('info');
    const flat = bufferLogger('info');
    write(full.logger);
    write(flatRecordLogger(flat.logger));
    expect(lines(flat.text())).toHaveLength(3);
    expect(lines(flat.text())).toEqual(lines(full.text()));
  });
});
