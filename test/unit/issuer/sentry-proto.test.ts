import { describe, expect, it } from '@jest/globals';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  findProtoRoot,
  loadSentryServiceDefinition,
  SENTRY_PROTO_FILE,
} from '../../../src/issuer/grpc/sentry-proto.js';

const REPO_PROTO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../proto');

describe('Sentry proto loading', () => {
  it('finds the proto root from the compiled module (dist/src/issuer/grpc)', () => {
    expect(findProtoRoot()).toBe(REPO_PROTO);
  });

  it('finds the proto root from an installed package layout (node_modules/warden/dist/src/...)', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'warden-install-'));
    try {
      const pkg = path.join(root, 'node_modules', 'warden');
      const moduleDir = path.join(pkg, 'dist', 'src', 'issuer', 'grpc');
      mkdirSync(moduleDir, { recursive: true });
      cpSync(REPO_PROTO, path.join(pkg, 'proto'), { recursive: true });
      expect(findProtoRoot(pathToFileURL(path.join(moduleDir, 'sentry-proto.js')).href)).toBe(
        path.join(pkg, 'proto'),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('says where it looked when the proto is missing', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'warden-noproto-'));
    try {
      expect(() => findProtoRoot(pathToFileURL(path.join(root, 'x.js')).href)).toThrow(
        `cannot find proto/${SENTRY_PROTO_FILE}`,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('round-trips a request keeping an unknown TokenValidator number and camelCase fields', () => {
    const method = loadSentryServiceDefinition().SignCertificate!;
    expect(method.path).toBe('/dapr.proto.sentry.v1.CA/SignCertificate');
    const bytes = method.requestSerialize({ id: 'a', tokenValidator: 99, jwtAudiences: ['x'] });
    expect(method.requestDeserialize(bytes)).toEqual({
      id: 'a',
      token: '',
      trustDomain: '',
      namespace: '',
      certificateSigningRequest: Buffer.alloc(0),
      tokenValidator: 99,
      jwtAudiences: ['x'],
    });
  });

  it('encodes valid_until as a Timestamp and leaves the JWT fields unset', () => {
    const method = loadSentryServiceDefinition().SignCertificate!;
    const bytes = method.responseSerialize({
      workloadCertificate: Buffer.from('chain'),
      trustChainCertificates: [Buffer.from('anchor')],
      validUntil: { seconds: 1767225600, nanos: 5_000_000 },
    });
    const decoded = method.responseDeserialize(bytes) as Record<string, unknown>;
    expect(decoded.validUntil).toEqual({ seconds: '1767225600', nanos: 5_000_000 });
    expect(decoded.jwt).toBeUndefined();
    expect(decoded.perAudienceJwts).toEqual({});
  });
});
