import { describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import * as grpc from '@grpc/grpc-js';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

describe('toolchain', () => {
  it('loads the ESM-only Kubernetes client, grpc-js and @peculiar/x509 under jest', () => {
    expect(typeof k8s.KubeConfig).toBe('function');
    expect(typeof grpc.Server).toBe('function');
    expect(typeof x509.X509CertificateGenerator).toBe('function');
  });
});
