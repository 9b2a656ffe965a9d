/**
 * From a CSR's SubjectPublicKeyInfo to a verified signature: what each way costs.
 *
 *   node dist/bench/csr-verify.js [--scale=1]
 *
 * For P-256, P-384, Ed25519 and RSA-2048, every operation uses a different pre-generated key
 * (as every sidecar sends a fresh key; nothing may be cached), and verifies a real
 * certificationRequestInfo signature. Rows are wall µs/op (sequential, best of 3 rounds) and
 * process CPU µs/op (all threads, so WebCrypto's thread-pool work counts).
 */
import {
  createPublicKey,
  generateKeyPairSync,
  KeyObject,
  sign,
  verify,
  webcrypto,
  type JsonWebKey,
} from 'node:crypto';
import { readVerifiedCsrKey } from '../src/issuer/signing/csr.js';
import { ALGORITHM_IDS, buildCsrDer } from '../test/support/csr-builder.js';
import { toPem } from '../test/support/signing-test-pki.js';
import { formatRow, measureBest, numberFlag, type Measurement } from './bench-util.js';

type KeyType = 'P-256' | 'P-384' | 'Ed25519' | 'RSA-2048';

interface Sample {
  readonly spki: Buffer;
  /** subjectPublicKey bits: EC point, Ed25519 key, or PKCS#1 RSAPublicKey. */
  readonly bits: Buffer;
  readonly rsa?: { readonly n: Buffer; readonly e: Buffer };
  readonly cri: Buffer;
  readonly signature: Buffer;
  readonly p1363?: Buffer;
  readonly csrPem: Buffer;
  readonly keyObject: KeyObject;
}

const HASH: Record<KeyType, string | null> = {
  'P-256': 'sha256',
  'P-384': 'sha384',
  Ed25519: null,
  'RSA-2048': 'sha256',
};
const SPKI_HEADER: Record<KeyType, number> = {
  'P-256': 26,
  'P-384': 23,
  Ed25519: 12,
  'RSA-2048': 24,
};

function generate(type: KeyType) {
  switch (type) {
    case 'P-256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'P-384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'Ed25519':
      return generateKeyPairSync('ed25519');
    case 'RSA-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
  }
}

/** ECDSA DER signature → IEEE P1363 r||s, as WebCrypto wants it. */
function derToP1363(der: Buffer, size: number): Buffer {
  const rLen = der[3] as number;
  const r = der.subarray(4, 4 + rLen);
  const s = der.subarray(6 + rLen);
  const out = Buffer.alloc(size * 2);
  r.subarray(Math.max(0, r.length - size)).copy(out, size - Math.min(size, r.length));
  s.subarray(Math.max(0, s.length - size)).copy(out, 2 * size - Math.min(size, s.length));
  return out;
}

function makeSamples(type: KeyType, count: number): Sample[] {
  const samples: Sample[] = [];
  for (let i = 0; i < count; i++) {
    const { publicKey, privateKey } = generate(type);
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const algorithm =
      type === 'Ed25519'
        ? ALGORITHM_IDS.ed25519
        : type === 'RSA-2048'
          ? ALGORITHM_IDS.sha256WithRsa
          : type === 'P-384'
            ? Buffer.from('300a06082a8648ce3d040303', 'hex')
            : ALGORITHM_IDS.ecdsaWithSha256;
    let cri: Buffer = Buffer.alloc(0);
    let signature: Buffer = Buffer.alloc(0);
    const der = buildCsrDer({
      spki,
      subject: Buffer.from(
        '3013311130 0f0603550403130877 6f726b6c6f6164'.replace(/\s/g, ''),
        'hex',
      ),
      signatureAlgorithm: algorithm,
      signWith: (c) => {
        cri = c;
        signature = sign(HASH[type], c, privateKey);
        return signature;
      },
    });
    const bits = spki.subarray(SPKI_HEADER[type]);
    let rsa: Sample['rsa'];
    if (type === 'RSA-2048') {
      const jwk = publicKey.export({ format: 'jwk' });
      rsa = {
        n: Buffer.from(jwk.n as string, 'base64url'),
        e: Buffer.from(jwk.e as string, 'base64url'),
      };
    }
    const size = type === 'P-256' ? 32 : 48;
    samples.push({
      spki,
      bits,
      rsa,
      cri,
      signature,
      p1363: type === 'P-256' || type === 'P-384' ? derToP1363(signature, size) : undefined,
      csrPem: Buffer.from(toPem(der)),
      keyObject: publicKey,
    });
  }
  return samples;
}

function jwkOf(type: KeyType, s: Sample): JsonWebKey {
  switch (type) {
    case 'P-256':
    case 'P-384': {
      const half = (s.bits.length - 1) / 2;
      return {
        kty: 'EC',
        crv: type,
        x: s.bits.subarray(1, 1 + half).toString('base64url'),
        y: s.bits.subarray(1 + half).toString('base64url'),
      };
    }
    case 'Ed25519':
      return { kty: 'OKP', crv: 'Ed25519', x: s.bits.toString('base64url') };
    case 'RSA-2048':
      return {
        kty: 'RSA',
        n: (s.rsa?.n as Buffer).toString('base64url'),
        e: (s.rsa?.e as Buffer).toString('base64url'),
      };
  }
}

function check(ok: boolean): void {
  if (!ok) throw new Error('a signature did not verify: the benchmark is broken');
}

async function benchType(type: KeyType, ops: number): Promise<Measurement[]> {
  // Distinct keys: every import starts from bytes OpenSSL has not seen (RSA keys are slow to
  // generate, so fewer of them are cycled; each operation still imports a new KeyObject).
  const samples = makeSamples(type, Math.min(ops, type === 'RSA-2048' ? 50 : 400));
  const at = (i: number): Sample => samples[i % samples.length] as Sample;
  const hash = HASH[type];
  const subtle = webcrypto.subtle;
  const importAlg =
    type === 'Ed25519'
      ? { name: 'Ed25519' }
      : type === 'RSA-2048'
        ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
        : { name: 'ECDSA', namedCurve: type };
  const verifyAlg =
    type === 'P-256'
      ? { name: 'ECDSA', hash: 'SHA-256' }
      : type === 'P-384'
        ? { name: 'ECDSA', hash: 'SHA-384' }
        : importAlg;
  const webSig = (s: Sample): Buffer => s.p1363 ?? s.signature;
  const rows: Measurement[] = [];
  const run = async (name: string, fn: (i: number) => unknown): Promise<void> => {
    rows.push(await measureBest(`${type}: ${name}`, ops, fn));
  };

  await run('floor: verify only, key already imported', (i) =>
    check(verify(hash, at(i).cri, at(i).keyObject, at(i).signature)),
  );
  await run('import only: createPublicKey(SPKI DER)', (i) =>
    createPublicKey({ key: at(i).spki, format: 'der', type: 'spki' }),
  );
  await run('import only: createPublicKey(JWK)', (i) =>
    createPublicKey({ key: jwkOf(type, at(i)), format: 'jwk' }),
  );
  if (type !== 'RSA-2048') {
    await run("import only: webcrypto importKey('raw') → KeyObject", async (i) =>
      KeyObject.from(await subtle.importKey('raw', at(i).bits, importAlg, true, ['verify'])),
    );
  } else {
    await run('import only: createPublicKey(PKCS#1 DER)', (i) =>
      createPublicKey({ key: at(i).bits, format: 'der', type: 'pkcs1' }),
    );
  }
  await run('createPublicKey(SPKI DER) + verify', (i) =>
    check(
      verify(
        hash,
        at(i).cri,
        createPublicKey({ key: at(i).spki, format: 'der', type: 'spki' }),
        at(i).signature,
      ),
    ),
  );
  await run('verify(SPKI DER passed directly)', (i) =>
    check(
      verify(hash, at(i).cri, { key: at(i).spki, format: 'der', type: 'spki' }, at(i).signature),
    ),
  );
  await run('createPublicKey(JWK) + verify', (i) =>
    check(
      verify(
        hash,
        at(i).cri,
        createPublicKey({ key: jwkOf(type, at(i)), format: 'jwk' }),
        at(i).signature,
      ),
    ),
  );
  await run('verify(JWK passed directly)', (i) =>
    check(verify(hash, at(i).cri, { key: jwkOf(type, at(i)), format: 'jwk' }, at(i).signature)),
  );
  await run("webcrypto importKey('spki') + subtle.verify", async (i) => {
    const key = await subtle.importKey('spki', at(i).spki, importAlg, false, ['verify']);
    check(await subtle.verify(verifyAlg, key, webSig(at(i)), at(i).cri));
  });
  if (type !== 'RSA-2048') {
    await run("webcrypto importKey('raw') + subtle.verify", async (i) => {
      const key = await subtle.importKey('raw', at(i).bits, importAlg, false, ['verify']);
      check(await subtle.verify(verifyAlg, key, webSig(at(i)), at(i).cri));
    });
    await run("webcrypto importKey('raw') → KeyObject.from + verify", async (i) => {
      const key = KeyObject.from(
        await subtle.importKey('raw', at(i).bits, importAlg, true, ['verify']),
      );
      check(verify(hash, at(i).cri, key, at(i).signature));
    });
  } else {
    await run('createPublicKey(PKCS#1 DER) + verify', (i) =>
      check(
        verify(
          hash,
          at(i).cri,
          createPublicKey({ key: at(i).bits, format: 'der', type: 'pkcs1' }),
          at(i).signature,
        ),
      ),
    );
  }
  await run('Warden readVerifiedCsrKey (PEM→DER→key→verify)', (i) =>
    readVerifiedCsrKey(at(i).csrPem),
  );
  return rows;
}

const scale = numberFlag('scale', 1);
const OPS: Record<KeyType, number> = { 'P-256': 400, 'P-384': 100, Ed25519: 400, 'RSA-2048': 400 };
console.log(
  `node ${process.versions.node}, OpenSSL ${process.versions.openssl}; machine shared with other work: figures are noisy (best of 3 rounds).`,
);
for (const type of ['P-256', 'P-384', 'Ed25519', 'RSA-2048'] as const) {
  for (const row of await benchType(type, Math.max(20, Math.round(OPS[type] * scale))))
    console.log(formatRow(row));
  console.log('');
}
