// The README's reference tables are generated from the code they describe, so they cannot
// drift: `npm run docs` rewrites them, and test/unit/docs checks they are current.
import { Registry } from 'prom-client';
import { createTrustMetrics } from '../src/ca/trust-metrics.js';
import { SERVE_FLAGS } from '../src/cli/serve-flags.js';
import { GRPC_STATUS_BY_CODE } from '../src/issuer/grpc/status-map.js';
import { createSentryMetrics } from '../src/issuer/metrics.js';
import { httpErrorFor, hasHttpErrorMapping } from '../src/secrets/api/http-errors.js';
import { createSecretsMetrics } from '../src/secrets/metrics.js';
import { ERROR_CODES, type ErrorCode } from '../src/shared/error-codes.js';
import type { FlagSpecs } from '../src/shared/flags.js';

const GRPC_STATUS_NAMES: Record<number, string> = {
  0: 'OK',
  1: 'CANCELLED',
  2: 'UNKNOWN',
  3: 'INVALID_ARGUMENT',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  9: 'FAILED_PRECONDITION',
  10: 'ABORTED',
  11: 'OUT_OF_RANGE',
  12: 'UNIMPLEMENTED',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  15: 'DATA_LOSS',
  16: 'UNAUTHENTICATED',
};

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function flagsTable(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(
    ([name, spec]) =>
      `| \`--${name}\` | ${spec.default === undefined || spec.default === '' ? '' : `\`${spec.default}\``} | ${cell(spec.description)} |`,
  );
  return ['| flag | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

export function errorCodesTable(): string {
  const rows = (Object.keys(ERROR_CODES) as ErrorCode[]).map((code) => {
    const grpc = GRPC_STATUS_BY_CODE[code];
    const grpcText = grpc
      ? `${GRPC_STATUS_NAMES[grpc.status] ?? grpc.status}${grpc.exposeMessage ? '' : ' (generic message)'}`
      : '';
    const http = hasHttpErrorMapping(code)
      ? `${httpErrorFor(code).status} \`${httpErrorFor(code).errorCode}\``
      : '';
    return `| \`${code}\` | ${cell(ERROR_CODES[code])} | ${grpcText} | ${http} |`;
  });
  return [
    '| code | meaning | gRPC status (SignCertificate) | HTTP (secrets API) |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

export async function metricsTable(): Promise<string> {
  const registry = new Registry();
  // As `warden serve` registers them: one registry, the Dapr issuer metrics owned by the edge.
  createSentryMetrics(registry);
  createTrustMetrics(registry, { daprIssuerMetrics: false });
  createSecretsMetrics(registry);
  const metrics = await registry.getMetricsAsJSON();
  const rows = metrics.map((m) => {
    const labels = [
      ...new Set(
        (m.values as Array<{ labels: Record<string, unknown> }>)
          .flatMap((v) => Object.keys(v.labels))
          .filter((l) => l !== 'le'),
      ),
    ];
    return `| \`${m.name}\` | ${m.type} | ${labels.map((l) => `\`${l}\``).join(', ')} | ${cell(m.help)} |`;
  });
  return ['| metric | type | labels | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** Every generated section, keyed by the name in its README markers. */
export async function generatedSections(): Promise<Record<string, string>> {
  return {
    'serve-flags': flagsTable(SERVE_FLAGS),
    'error-codes': errorCodesTable(),
    metrics: await metricsTable(),
  };
}

const MARKER = /<!-- BEGIN GENERATED: ([a-z-]+) -->\n[\s\S]*?<!-- END GENERATED: \1 -->/g;

/** The README text with every generated section replaced by its current content. */
export async function renderReadme(readme: string): Promise<string> {
  const sections = await generatedSections();
  return readme.replace(MARKER, (_match, name: string) => {
    const body = sections[name];
    if (body === undefined) throw new Error(`README names an unknown generated section "${name}"`);
    return `<!-- BEGIN GENERATED: ${name} -->\n${body}\n<!-- END GENERATED: ${name} -->`;
  });
}
