// `npm run build && node dist/bench/jwt-mint.js [--ms 800] [--rounds 5]`: the cost of minting one
// JWT-SVID (claims, jti, JSON, base64url, signature) per algorithm, with Warden's node:crypto
// minter and with node-jose signing the same claims. Prints the median µs/op of each round.
// The machine is shared: figures move by tens of percent between runs; compare within one run.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import nodeJose from 'node-jose';
import {
  generateJwtSigningKey,
  exportPkcs8Pem,
  type JwtSigningKey,
} from '../src/ca/jwt/jwt-signing-key.js';
import {
  JWT_SIGNING_ALGORITHMS,
  type JwtSigningAlgorithm,
} from '../src/ca/jwt/jwt-signing-algorithm.js';
import { systemClock } from '../src/shared/clock.js';
import { createJwtSvidMinter } from '../src/issuer/jwt/jwt-svid.js';

const { values: opts } = parseArgs({
  options: {
    ms: { type: 'string', default: '800' },
    rounds: { type: 'string', default: '5' },
  },
});
const roundMs = Number(opts.ms);
const rounds = Number(opts.rounds);

const SPIFFE_ID = 'spiffe://public/ns/default/app';
const LEAF_NOT_AFTER = new Date(Date.now() + 48 * 3600_000);

async function timeIt(op: () => unknown | Promise<unknown>): Promise<number> {
  // Warm-up, then as many operations as fit in roundMs.
  for (let i = 0; i < 20; i++) await op();
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(roundMs) * 1_000_000n;
  let n = 0;
  let now = start;
  while (now < deadline) {
    await op();
    n++;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / 1000 / n;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function nodeCryptoOp(key: JwtSigningKey): Promise<() => unknown> {
  const minter = createJwtSvidMinter({
    signingKey: () => key,
    ttlMs: 24 * 3600_000,
    skewMs: 15 * 60_000,
    clock: systemClock,
  });
  return () =>
    minter.mint({
      spiffeId: SPIFFE_ID,
      trustDomain: 'public',
      audiences: [],
      notAfter: LEAF_NOT_AFTER,
    });
}

async function nodeJoseOp(key: JwtSigningKey): Promise<(() => Promise<unknown>) | string> {
  let joseKey: nodeJose.JWK.Key;
  try {
    joseKey = await nodeJose.JWK.asKey(exportPkcs8Pem(key.privateKey), 'pem');
  } catch (err) {
    return `unsupported (${(err as Error).message})`;
  }
  const op = async (): Promise<unknown> => {
    const now = Math.floor(Date.now() / 1000);
    const payload = JSON.stringify({
      sub: SPIFFE_ID,
      aud: ['public'],
      iat: now,
      nbf: now - 900,
      exp: Math.min(now + 86400, Math.floor(LEAF_NOT_AFTER.getTime() / 1000)),
      jti: randomBytes(16).toString('base64url'),
      use: 'sig',
    });
    return nodeJose.JWS.createSign(
      { format: 'compact', fields: { alg: key.alg, kid: key.kid, typ: 'JWT' } },
      { key: joseKey, reference: false } as unknown as nodeJose.JWK.Key,
    )
      .update(payload)
      .final();
  };
  try {
    await op();
  } catch (err) {
    return `unsupported (${(err as Error).message})`;
  }
  return op;
}

async function main(): Promise<void> {
  const rows: {
    algorithm: JwtSigningAlgorithm;
    library: string;
    usPerOp: string;
    rounds: string;
  }[] = [];
  for (const algorithm of JWT_SIGNING_ALGORITHMS) {
    const key = await generateJwtSigningKey(algorithm);
    for (const [library, make] of [
      ['node:crypto', nodeCryptoOp],
      ['node-jose', nodeJoseOp],
    ] as const) {
      const op = await make(key);
      if (typeof op === 'string') {
        rows.push({ algorithm, library, usPerOp: op, rounds: '' });
        continue;
      }
      const results: number[] = [];
      for (let r = 0; r < rounds; r++) results.push(await timeIt(op));
      rows.push({
        algorithm,
        library,
        usPerOp: median(results).toFixed(1),
        rounds: results.map((v) => v.toFixed(0)).join(' '),
      });
    }
  }
  console.log(
    `JWT-SVID minting, µs per token (median of ${rounds} rounds of ${roundMs} ms; shared machine, noisy)`,
  );
  console.table(rows);
}

await main();
