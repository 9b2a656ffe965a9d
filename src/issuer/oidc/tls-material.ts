import { promises as fs } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { WardenError } from '../../shared/errors.js';

/** A server certificate chain and its private key, PEM. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
}

/**
 * A source of server TLS material that can change (a certificate issued by Warden's own CA and
 * renewed before it expires). The server takes the current material at start and swaps to
 * each new one without a restart (grpc-js's certificate-provider pattern).
 */
export interface TlsMaterialProvider {
  current(): TlsMaterial;
  onChange(listener: (material: TlsMaterial) => void): () => void;
}

export function isTlsMaterialProvider(
  value: TlsMaterial | TlsMaterialProvider,
): value is TlsMaterialProvider {
  return typeof (value as TlsMaterialProvider).current === 'function';
}

/** Builds the secure context, refusing material that does not form a usable key pair. */
export function secureContextOf(
  material: TlsMaterial,
  what = 'OIDC server TLS material',
): SecureContext {
  try {
    return createSecureContext({ cert: material.cert, key: material.key, minVersion: 'TLSv1.2' });
  } catch (err) {
    throw new WardenError('ERR_CONFIG_INVALID', `${what} is not a usable certificate and key`, {
      cause: err,
    });
  }
}

/** Reads `--oidc-server-tls-cert-file` and `--oidc-server-tls-key-file`. */
export async function readTlsMaterialFiles(
  certFile: string,
  keyFile: string,
): Promise<TlsMaterial> {
  const read = async (file: string, flag: string): Promise<string> => {
    try {
      return await fs.readFile(file, 'utf8');
    } catch (err) {
      throw new WardenError('ERR_CONFIG_INVALID', `${flag}: cannot read ${file}`, { cause: err });
    }
  };
  const material = {
    cert: await read(certFile, '--oidc-server-tls-cert-file'),
    key: await read(keyFile, '--oidc-server-tls-key-file'),
  };
  secureContextOf(material, `${certFile} with ${keyFile}`);
  return material;
}
