import { X509Certificate } from 'node:crypto';
import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';

/**
 * TLS settings for talking to Vault, resolved from Dapr's metadata once at start-up.
 * `ca` undefined means Node's default trust store (Dapr uses the system pool too).
 */
export interface VaultTlsSettings {
  readonly ca: readonly string[] | undefined;
  readonly rejectUnauthorized: boolean;
  /** SNI and the name the server certificate is verified against (Dapr's tlsServerName). */
  readonly serverName: string | undefined;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
/** A CA bundle larger than this is not a CA bundle; refuse rather than read it whole. */
const MAX_CA_FILE_BYTES = 4 * 1024 * 1024;

/** Extracts and parses every certificate in PEM text; returns a problem sentence on failure. */
export function parseCertificates(
  pem: string,
  source: string,
): { certificates: string[] } | { problem: string } {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return { problem: `${source} holds no PEM CERTIFICATE block` };
  for (const [index, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      return { problem: `${source}: certificate ${index + 1} is not a valid X.509 certificate` };
    }
  }
  return { certificates: blocks };
}

async function readBoundedFile(file: string): Promise<string> {
  const stat = await fs.stat(file);
  if (!stat.isFile()) throw new Error('not a regular file');
  if (stat.size > MAX_CA_FILE_BYTES) throw new Error(`larger than ${MAX_CA_FILE_BYTES} bytes`);
  return fs.readFile(file, 'utf8');
}

export interface CaSources {
  readonly caPem: string | undefined;
  readonly caPath: string | undefined;
  readonly caCert: string | undefined;
}

/**
 * Loads the CA certificates named by Dapr's fields with Dapr's precedence
 * (caPem, then caPath, then caCert). caPath is a directory: every regular file in it that
 * holds PEM certificates is used (Kubernetes ConfigMap mounts add `..data` directories,
 * which are skipped); caCert is a file. Problems are pushed, never thrown, so the caller
 * can report them together with the rest of the metadata.
 */
export async function loadCaCertificates(
  sources: CaSources,
  problems: string[],
): Promise<string[] | undefined> {
  if (sources.caPem !== undefined) {
    // Dapr's docs show the PEM with literal "\n" sequences; accept that spelling too.
    const text =
      sources.caPem.includes('\\n') && !sources.caPem.includes('\n')
        ? sources.caPem.replace(/\\n/g, '\n')
        : sources.caPem;
    const parsed = parseCertificates(text, 'caPem');
    if ('problem' in parsed) {
      problems.push(parsed.problem);
      return undefined;
    }
    return parsed.certificates;
  }
  if (sources.caPath !== undefined) {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(sources.caPath, { withFileTypes: true });
    } catch (err) {
      problems.push(
        `caPath: cannot read directory ${sources.caPath} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
      return undefined;
    }
    const certificates: string[] = [];
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.')) continue;
      const file = path.join(sources.caPath, entry.name);
      let text: string;
      try {
        text = await readBoundedFile(file);
      } catch {
        continue; // directories, sockets and unreadable files are not CA files
      }
      const parsed = parseCertificates(text, `caPath file ${file}`);
      if ('problem' in parsed) {
        if (/-----BEGIN CERTIFICATE-----/.test(text)) problems.push(parsed.problem);
        continue;
      }
      certificates.push(...parsed.certificates);
    }
    if (certificates.length === 0 && !problems.some((p) => p.startsWith('caPath'))) {
      problems.push(`caPath: directory ${sources.caPath} holds no PEM certificate`);
    }
    return certificates.length > 0 ? certificates : undefined;
  }
  if (sources.caCert !== undefined) {
    let text: string;
    try {
      text = await readBoundedFile(sources.caCert);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      problems.push(`caCert: cannot read file ${sources.caCert} (${reason})`);
      return undefined;
    }
    const parsed = parseCertificates(text, `caCert file ${sources.caCert}`);
    if ('problem' in parsed) {
      problems.push(parsed.problem);
      return undefined;
    }
    return parsed.certificates;
  }
  return undefined;
}
