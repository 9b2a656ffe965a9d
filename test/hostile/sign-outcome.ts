import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type {
  SentryTestClient,
  WireSignRequest,
  WireSignResponse,
} from '../support/sentry-proto-client.js';
import { leafProblems } from './issued-leaf.js';
import type { SignExpectation } from './sign-certificate-corpus.js';

export type SignOutcome =
  | { readonly kind: 'issued'; readonly response: WireSignResponse }
  | { readonly kind: 'refused'; readonly code: GrpcStatus; readonly details: string };

/** Sends one request and reports what came back, never throwing for a gRPC status. */
export async function attemptSign(
  client: SentryTestClient,
  request: WireSignRequest,
  deadlineMs = 10_000,
): Promise<SignOutcome> {
  try {
    return { kind: 'issued', response: await client.sign(request, deadlineMs) };
  } catch (err) {
    const e = err as ServiceError;
    if (typeof e.code !== 'number') throw err;
    return { kind: 'refused', code: e.code, details: e.details };
  }
}

export function statusName(code: GrpcStatus): string {
  return GrpcStatus[code] ?? String(code);
}

/** Why an outcome is not what a corpus row expects (empty when it is). */
export async function outcomeProblems(
  expected: SignExpectation,
  outcome: SignOutcome,
  request: WireSignRequest,
  anchorsPem: string,
): Promise<string[]> {
  if ('refused' in expected) {
    if (outcome.kind === 'issued') return ['a certificate was issued'];
    const problems: string[] = [];
    if (outcome.code !== expected.refused)
      problems.push(`status ${statusName(outcome.code)}, expected ${statusName(expected.refused)}`);
    if (!outcome.details.includes(expected.fragment))
      problems.push(
        `details ${JSON.stringify(outcome.details)} lack ${JSON.stringify(expected.fragment)}`,
      );
    return problems;
  }
  if (outcome.kind === 'refused')
    return [`refused with ${statusName(outcome.code)}: ${outcome.details}`];
  return leafProblems(outcome.response, {
    spiffeId: expected.issued,
    dnsNames: expected.dnsNames ?? [],
    csrPem: Buffer.from(request.certificate_signing_request ?? []).toString('utf8'),
    anchorsPem,
  });
}
