import { createHash } from 'node:crypto';
import {
  CoreV1Api,
  type ConfigurationOptions,
  type KubeConfig,
  type V1ConfigMap,
  type V1Secret,
} from '@kubernetes/client-node';
import { WardenError } from '../../shared/errors.js';
import {
  createKubeCaller,
  KubeCallError,
  type KubeCallerOptions,
} from '../../shared/kube-caller.js';
import { isDns1123Label, isDns1123Subdomain } from '../../shared/kube-names.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import { parsePemBlocks } from '../pem.js';
import {
  DEFAULT_TRUST_MATERIAL_NAMES,
  TRUST_MATERIAL_PARTS,
  pemOf,
  type TrustMaterialNames,
  type TrustMaterialPart,
} from '../trust-material.js';
import {
  DEFAULT_TRUST_EXTRA_NAMES,
  TRUST_EXTRAS,
  sameStoredTrust,
  type StoredTrust,
  type TrustExtra,
  type TrustExtraNames,
  type TrustMaterialStore,
} from '../trust-store.js';
import { MAX_TRUST_FILE_BYTES } from '../validate.js';

/*
 * Trust material in the cluster, where Dapr keeps it: the Secret `dapr-trust-bundle` (ca.crt,
 * issuer.crt, issuer.key, and Warden's extras root.key, rotation.json, next-*) and the
 * ConfigMap of the same name (ca.crt, jwks.json) in the CA's namespace.
 *
 * Atomicity comes from the API server: the Secret is one object, so a read is a consistent
 * snapshot of every part and extra; create() is a POST (409 AlreadyExists: someone else won)
 * or, over an empty Secret (Dapr's Helm chart creates one), a PUT carrying the
 * resourceVersion that was read; replace() is a PUT with the resourceVersion of the read that
 * matched `expected` (409 Conflict: someone else changed it first). Keys the store does not
 * manage (jwt.key, jwks.json, jwt-rotation.json, anything else) are carried over untouched.
 *
 * Secret or ConfigMap: which one is right? (Dapr #9563: when they disagree Sentry silently
 * mints a brand-new CA.) Warden's rule:
 *   1. The Secret is the only source of trust material. The ConfigMap is derived from it
 *      (written after the Secret by create/replace, and by publishConfigMap after the CA has
 *      validated an operator's update) and is never read as material.
 *   2. A ConfigMap without anchors (absent, no ca.crt, or empty) agrees with anything.
 *   3. A ConfigMap whose ca.crt equals the Secret's agrees.
 *   4. A ConfigMap whose ca.crt differs from the Secret's is *stale-behind* when it is exactly
 *      what Warden last published into it: every write stamps the annotation
 *      warden.dapr.io/anchors-sha256 with the SHA-256 of the ca.crt written, and an
 *      untouched ConfigMap still hashes to it. This is the window between a Secret update
 *      (ours, or an operator's) and the ConfigMap following it; the ConfigMap is then
 *      brought in line once the new Secret has been validated.
 *   5. Any other difference is a *conflict*: someone edited the ConfigMap (or it was never
 *      Warden's, e.g. written by Dapr Sentry, and disagrees). Reads and writes refuse with
 *      ERR_TRUST_MATERIAL_CONFLICT naming both sets of SHA-256 fingerprints; nothing is
 *      written and nothing is minted. The operator decides which is right.
 *   6. A ConfigMap that publishes anchors while the Secret holds no material is a conflict
 *      too: workloads trust those anchors, and a new CA would silently break them. To start a
 *      new CA on purpose, delete both.
 * Reads fetch the ConfigMap first and the Secret second: our writes go Secret first, so a
 * ConfigMap seen with new anchors is always followed by a Secret read that has them.
 */

import { DEFAULT_TRUST_BUNDLE_NAME } from './kubernetes-names.js';
export { DEFAULT_TRUST_BUNDLE_NAME };
/** SHA-256 (hex) of the ca.crt Warden last wrote into the trust-bundle ConfigMap. */
export const ANCHORS_SHA256_ANNOTATION = 'warden.dapr.io/anchors-sha256';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_WARDEN = 'warden';
/** Secret keys copied into the ConfigMap when present (Dapr publishes jwks.json there). */
export const DEFAULT_PUBLISHED_KEYS: readonly string[] = Object.freeze(['jwks.json']);

export interface KubernetesTrustStoreOptions {
  readonly kubeConfig: KubeConfig;
  /** The CA's namespace (env NAMESPACE). */
  readonly namespace: string;
  /** Name of both the Secret and the ConfigMap (--trust-bundle-name, default dapr-trust-bundle). */
  readonly name?: string;
  /** Secret data keys of the three parts (the --issuer-*-filename flags). */
  readonly names?: TrustMaterialNames;
  /** Secret data key of the root key Warden keeps (default root.key). */
  readonly rootKeyName?: string;
  /** Secret keys copied into the ConfigMap when present, besides the anchors (default jwks.json). */
  readonly publishedKeys?: readonly string[];
  readonly retry?: KubeCallerOptions;
  readonly logger?: Logger;
}

export interface KubernetesTrustMaterialStore extends TrustMaterialStore {
  readonly namespace: string;
  /** The Secret's and the ConfigMap's name. */
  readonly name: string;
  /**
   * Brings the ConfigMap in line with the Secret, but only while the Secret's anchors are
   * exactly `validatedAnchorsPem` (what this replica's CA validated and serves): a replica that
   * has not yet seen a newer Secret never publishes older anchors over newer ones, and an
   * update the CA refused is never published. 'skipped' when the Secret has moved on or the
   * ConfigMap is in conflict (rule 5 above; logged).
   */
  publishConfigMap(validatedAnchorsPem: string): Promise<'updated' | 'unchanged' | 'skipped'>;
}

type Entry = TrustMaterialPart | TrustExtra;
const ENTRIES: readonly Entry[] = [...TRUST_MATERIAL_PARTS, ...TRUST_EXTRAS];

interface Snapshot {
  readonly configMap: V1ConfigMap | null;
  readonly secret: V1Secret | null;
  /** The Secret's data, decoded; empty when there is no Secret. */
  readonly data: Readonly<Record<string, string>>;
}

type State =
  | { readonly kind: 'complete'; readonly stored: StoredTrust }
  | { readonly kind: 'absent' }
  | { readonly kind: 'partial'; readonly present: readonly TrustMaterialPart[] };

/** Read-modify-write rounds before giving up on a Secret that keeps changing under us. */
const MAX_ROUNDS = 8;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

export function createKubernetesTrustStore(
  options: KubernetesTrustStoreOptions,
): KubernetesTrustMaterialStore {
  const name = options.name ?? DEFAULT_TRUST_BUNDLE_NAME;
  const { namespace } = options;
  if (!isDns1123Subdomain(name))
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `trust bundle name "${name}" is not a valid Kubernetes name`,
    );
  if (!isDns1123Label(namespace))
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `namespace "${namespace}" is not a valid Kubernetes namespace name`,
    );
  const names = checkNames(options.names ?? DEFAULT_TRUST_MATERIAL_NAMES);
  const extraNames = checkExtraNames(names, {
    ...DEFAULT_TRUST_EXTRA_NAMES,
    rootKey: options.rootKeyName ?? DEFAULT_TRUST_EXTRA_NAMES.rootKey,
  });
  const publishedKeys = (options.publishedKeys ?? DEFAULT_PUBLISHED_KEYS).filter(
    (key) => key !== names.anchors,
  );
  const keyOf = (entry: Entry): string => (isPart(entry) ? names[entry] : extraNames[entry]);
  const managedKeys = new Set(ENTRIES.map(keyOf));
  const logger = (options.logger ?? silentLogger).child({ trustBundle: `${namespace}/${name}` });
  const api = options.kubeConfig.makeApiClient(CoreV1Api);
  const server = options.kubeConfig.getCurrentCluster()?.server ?? 'the Kubernetes API';
  const caller = createKubeCaller(server, options.retry);
  const secretRef = `Secret "${name}" in namespace "${namespace}"`;
  const configMapRef = `ConfigMap "${name}" in namespace "${namespace}"`;
  const description = `Kubernetes ${secretRef} (${names.anchors}, ${names.issuerChain}, ${names.issuerKey}) and its ConfigMap`;

  function ioError(action: string, err: unknown): WardenError {
    if (err instanceof WardenError) return err;
    const detail = err instanceof KubeCallError ? err.detail : String(err);
    return new WardenError('ERR_TRUST_MATERIAL_IO', `cannot ${action}: ${detail}`, { cause: err });
  }

  async function getOrNull<T>(
    what: string,
    call: (o: ConfigurationOptions) => Promise<T>,
  ): Promise<T | null> {
    try {
      return await caller.call(what, call);
    } catch (err) {
      if (err instanceof KubeCallError && err.status === 404) return null;
      throw ioError(what, err);
    }
  }

  async function fetchSnapshot(): Promise<Snapshot> {
    // ConfigMap first: see the comment at the top.
    const configMap = await getOrNull(`read ${configMapRef}`, (o) =>
      api.readNamespacedConfigMap({ name, namespace }, o),
    );
    const secret = await getOrNull(`read ${secretRef}`, (o) =>
      api.readNamespacedSecret({ name, namespace }, o),
    );
    return { configMap, secret, data: decodeData(secret?.data, managedKeys) };
  }

  function interpret(snapshot: Snapshot): State {
    const { data } = snapshot;
    const present = TRUST_MATERIAL_PARTS.filter((p) => nonEmpty(data[names[p]]));
    if (present.length === 0) return { kind: 'absent' };
    if (present.length < TRUST_MATERIAL_PARTS.length) return { kind: 'partial', present };
    const extras: Partial<Record<TrustExtra, string>> = {};
    for (const extra of TRUST_EXTRAS) {
      const text = data[extraNames[extra]];
      if (nonEmpty(text)) extras[extra] = text;
    }
    return {
      kind: 'complete',
      stored: {
        material: {
          anchorsPem: data[names.anchors] as string,
          issuerChainPem: data[names.issuerChain] as string,
          issuerKeyPem: data[names.issuerKey] as string,
        },
        extras,
      },
    };
  }

  function publishedAnchors(configMap: V1ConfigMap | null): string | undefined {
    const text = configMap?.data?.[names.anchors];
    return nonEmpty(text) ? text : undefined;
  }

  /** Rule 4: the ConfigMap holds exactly what Warden last wrote into it. */
  function untouchedSinceWeWrote(configMap: V1ConfigMap, anchors: string): boolean {
    return configMap.metadata?.annotations?.[ANCHORS_SHA256_ANNOTATION] === sha256Hex(anchors);
  }

  /** Rules 2-6; throws ERR_TRUST_MATERIAL_CONFLICT. */
  function checkAgreement(snapshot: Snapshot, state: State): void {
    const { configMap } = snapshot;
    const published = publishedAnchors(configMap);
    if (configMap === null || published === undefined) return;
    if (state.kind === 'absent') {
      throw new WardenError(
        'ERR_TRUST_MATERIAL_CONFLICT',
        `${configMapRef} publishes trust anchors [${anchorFingerprints(published)}] but ${secretRef} holds no trust material; ` +
          'Warden does not mint a new CA while workloads trust other anchors (Dapr #9563). ' +
          `Restore the Secret, or delete the ConfigMap too to start a new CA on purpose`,
        { details: { configMapAnchorsSha256: anchorFingerprints(published) } },
      );
    }
    if (state.kind !== 'complete') return;
    const held = state.stored.material.anchorsPem;
    if (published === held || untouchedSinceWeWrote(configMap, published)) return;
    throw conflictError(published, held);
  }

  function conflictError(published: string, held: string): WardenError {
    return new WardenError(
      'ERR_TRUST_MATERIAL_CONFLICT',
      `${configMapRef} publishes trust anchors [${anchorFingerprints(published)}] but ${secretRef} holds [${anchorFingerprints(held)}], ` +
        `and the ConfigMap is not what Warden last published (annotation ${ANCHORS_SHA256_ANNOTATION}); ` +
        'Warden will not guess which is right, and mints nothing. Make them agree: if the Secret is right, ' +
        `copy its ${names.anchors} into the ConfigMap (or delete the ConfigMap); if the ConfigMap is right, restore the Secret`,
      {
        details: {
          configMapAnchorsSha256: anchorFingerprints(published),
          secretAnchorsSha256: anchorFingerprints(held),
        },
      },
    );
  }

  function partialError(present: readonly TrustMaterialPart[]): WardenError {
    const missing = TRUST_MATERIAL_PARTS.filter((p) => !present.includes(p)).map((p) => names[p]);
    return new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${secretRef} holds only part of the trust material: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing or empty; ` +
        'Warden will not generate over it: complete it or empty it',
    );
  }

  async function readChecked(): Promise<{ snapshot: Snapshot; state: State }> {
    const snapshot = await fetchSnapshot();
    const state = interpret(snapshot);
    if (state.kind === 'partial') throw partialError(state.present);
    checkAgreement(snapshot, state);
    return { snapshot, state };
  }

  /** New Secret data: every key we do not manage kept, then the parts and extras of `stored`. */
  function secretDataFor(previous: V1Secret | null, stored: StoredTrust): Record<string, string> {
    const data: Record<string, string> = {};
    for (const [key, value] of Object.entries(previous?.data ?? {})) {
      if (!managedKeys.has(key)) data[key] = value;
    }
    for (const part of TRUST_MATERIAL_PARTS) data[names[part]] = b64(pemOf(stored.material, part));
    for (const extra of TRUST_EXTRAS) {
      const text = stored.extras[extra];
      if (text !== undefined) data[extraNames[extra]] = b64(text);
    }
    return data;
  }

  /** POST or PUT of the Secret; 'lost' on 409/404 (someone else changed it first). */
  async function writeSecret(
    previous: V1Secret | null,
    data: Record<string, string>,
  ): Promise<'written' | 'lost'> {
    try {
      if (previous === null) {
        await caller.call(`create ${secretRef}`, (o) =>
          api.createNamespacedSecret(
            {
              namespace,
              body: {
                apiVersion: 'v1',
                kind: 'Secret',
                type: 'Opaque',
                metadata: { name, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_WARDEN } },
                data,
              },
            },
            o,
          ),
        );
      } else {
        await caller.call(`update ${secretRef}`, (o) =>
          api.replaceNamespacedSecret(
            {
              name,
              namespace,
              body: {
                ...previous,
                apiVersion: 'v1',
                kind: 'Secret',
                metadata: { ...previous.metadata, managedFields: undefined },
                data,
                stringData: undefined,
              },
            },
            o,
          ),
        );
      }
      return 'written';
    } catch (err) {
      if (err instanceof KubeCallError && (err.status === 409 || err.status === 404)) return 'lost';
      throw ioError(previous === null ? `create ${secretRef}` : `update ${secretRef}`, err);
    }
  }

  /**
   * The ConfigMap made to publish `anchors` (and the published keys from `secretData`).
   * Returns 'lost' on a 409/404 so the caller re-reads.
   */
  async function writeConfigMap(
    configMap: V1ConfigMap | null,
    anchors: string,
    secretData: Readonly<Record<string, string>>,
  ): Promise<'written' | 'unchanged' | 'lost'> {
    const data: Record<string, string> = { ...(configMap?.data ?? {}), [names.anchors]: anchors };
    for (const key of publishedKeys) {
      const value = secretData[key];
      if (nonEmpty(value)) data[key] = value;
    }
    const stamp = sha256Hex(anchors);
    const annotations = {
      ...(configMap?.metadata?.annotations ?? {}),
      [ANCHORS_SHA256_ANNOTATION]: stamp,
    };
    if (
      configMap !== null &&
      configMap.metadata?.annotations?.[ANCHORS_SHA256_ANNOTATION] === stamp &&
      sameStrings(configMap.data ?? {}, data)
    ) {
      return 'unchanged';
    }
    try {
      if (configMap === null) {
        await caller.call(`create ${configMapRef}`, (o) =>
          api.createNamespacedConfigMap(
            {
              namespace,
              body: {
                apiVersion: 'v1',
                kind: 'ConfigMap',
                metadata: {
                  name,
                  namespace,
                  labels: { [MANAGED_BY_LABEL]: MANAGED_BY_WARDEN },
                  annotations,
                },
                data,
              },
            },
            o,
          ),
        );
      } else {
        await caller.call(`update ${configMapRef}`, (o) =>
          api.replaceNamespacedConfigMap(
            {
              name,
              namespace,
              body: {
                ...configMap,
                apiVersion: 'v1',
                kind: 'ConfigMap',
                metadata: { ...configMap.metadata, managedFields: undefined, annotations },
                data,
              },
            },
            o,
          ),
        );
      }
      return 'written';
    } catch (err) {
      if (err instanceof KubeCallError && (err.status === 409 || err.status === 404)) return 'lost';
      throw ioError(configMap === null ? `create ${configMapRef}` : `update ${configMapRef}`, err);
    }
  }

  /** Rounds of: read both, stop unless the Secret still has `anchors`, write the ConfigMap. */
  async function syncConfigMap(anchors: string): Promise<'updated' | 'unchanged' | 'skipped'> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const snapshot = await fetchSnapshot();
      const state = interpret(snapshot);
      if (state.kind !== 'complete' || state.stored.material.anchorsPem !== anchors)
        return 'skipped';
      const published = publishedAnchors(snapshot.configMap);
      if (
        snapshot.configMap !== null &&
        published !== undefined &&
        published !== anchors &&
        !untouchedSinceWeWrote(snapshot.configMap, published)
      ) {
        const err = conflictError(published, anchors);
        logger.error(
          { code: err.code, details: err.details },
          `not updating ${configMapRef}: ${err.message}`,
        );
        return 'skipped';
      }
      const outcome = await writeConfigMap(
        snapshot.configMap,
        anchors,
        decodeAll(snapshot.secret?.data),
      );
      if (outcome === 'unchanged') return 'unchanged';
      if (outcome === 'written') {
        logger.info(
          { anchors: anchorFingerprints(anchors) },
          `${configMapRef} now publishes the Secret's anchors`,
        );
        return 'updated';
      }
    }
    throw new WardenError(
      'ERR_TRUST_MATERIAL_IO',
      `${configMapRef} kept changing while being updated; will retry`,
    );
  }

  /** After our own Secret write: the ConfigMap follows; its failure is logged (the Secret watch retries). */
  async function followWrite(anchors: string): Promise<void> {
    try {
      await syncConfigMap(anchors);
    } catch (err) {
      logger.warn(
        { error: err instanceof Error ? err.message : String(err) },
        `the Secret was written but ${configMapRef} could not follow yet`,
      );
    }
  }

  async function read(): Promise<StoredTrust | null> {
    const { state } = await readChecked();
    return state.kind === 'complete' ? state.stored : null;
  }

  return {
    namespace,
    name,
    names,
    extraNames,
    describe: () => description,

    async load() {
      return (await read())?.material ?? null;
    },

    read,

    async create(material, extras = {}) {
      checkStored({ material, extras });
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const { snapshot, state } = await readChecked();
        if (state.kind === 'complete') return 'exists';
        // Absent or empty (Dapr's chart creates an empty Secret): extras left in it describe
        // material that no longer exists and are dropped by writing only ours.
        const data = secretDataFor(snapshot.secret, { material, extras });
        if ((await writeSecret(snapshot.secret, data)) === 'lost') continue;
        logger.info(
          { anchors: anchorFingerprints(material.anchorsPem) },
          `created the trust material in ${secretRef}`,
        );
        await followWrite(material.anchorsPem);
        return 'created';
      }
      throw new WardenError(
        'ERR_TRUST_MATERIAL_IO',
        `${secretRef} kept changing while being created`,
      );
    },

    async replace(expected, next) {
      checkStored(expected);
      checkStored(next);
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const snapshot = await fetchSnapshot();
        const state = interpret(snapshot);
        if (state.kind !== 'complete') return 'conflict';
        checkAgreement(snapshot, state);
        if (!sameStoredTrust(state.stored, expected)) return 'conflict';
        if (sameStoredTrust(state.stored, next)) return 'replaced';
        const data = secretDataFor(snapshot.secret, next);
        // A 409 may come from a change to labels or annotations only: re-read and compare again.
        if ((await writeSecret(snapshot.secret, data)) === 'lost') continue;
        await followWrite(next.material.anchorsPem);
        return 'replaced';
      }
      throw new WardenError(
        'ERR_TRUST_MATERIAL_IO',
        `${secretRef} kept changing while being replaced`,
      );
    },

    publishConfigMap: syncConfigMap,
  };
}

/**
 * SHA-256 fingerprints of each certificate in a PEM text (as `openssl x509 -fingerprint
 * -sha256` prints them), or of the bytes when the text is not PEM. Public data only.
 */
export function anchorFingerprints(pem: string): string {
  const parsed = parsePemBlocks(pem);
  if (!parsed.ok) return `not PEM, bytes SHA-256 ${sha256Hex(pem)}`;
  return parsed.blocks
    .map((block) =>
      createHash('sha256').update(block.der).digest('hex').toUpperCase().match(/../g)?.join(':'),
    )
    .join(', ');
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function nonEmpty(text: string | undefined): text is string {
  return text !== undefined && text.length > 0;
}

function isPart(entry: Entry): entry is TrustMaterialPart {
  return (TRUST_MATERIAL_PARTS as readonly string[]).includes(entry);
}

function sameStrings(
  a: Readonly<Record<string, string>>,
  b: Readonly<Record<string, string>>,
): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** The managed keys of a Secret's data, decoded; over-large values refused (never quoted). */
function decodeData(
  data: Readonly<Record<string, string>> | undefined,
  managed: ReadonlySet<string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(data ?? {})) {
    if (!managed.has(key)) continue;
    const bytes = Buffer.from(value, 'base64');
    if (bytes.length > MAX_TRUST_FILE_BYTES)
      throw new WardenError(
        'ERR_TRUST_MATERIAL_INVALID',
        `${key} is larger than ${MAX_TRUST_FILE_BYTES} bytes`,
      );
    out[key] = bytes.toString('utf8');
  }
  return out;
}

function decodeAll(data: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(data ?? {}))
    out[key] = Buffer.from(value, 'base64').toString('utf8');
  return out;
}

/** Programmer misuse: a snapshot must carry text for every part and only text in extras. */
function checkStored(stored: StoredTrust): void {
  for (const part of TRUST_MATERIAL_PARTS) {
    if (typeof pemOf(stored.material, part) !== 'string')
      throw new TypeError(`trust material ${part} must be a string`);
  }
  for (const [extra, text] of Object.entries(stored.extras)) {
    if (!(TRUST_EXTRAS as readonly string[]).includes(extra))
      throw new TypeError(`unknown trust extra ${extra}`);
    if (text !== undefined && typeof text !== 'string')
      throw new TypeError(`trust extra ${extra} must be a string`);
  }
}

function keyProblem(key: string): string | null {
  if (key.length === 0 || key.length > 253 || !CONFIG_KEY.test(key) || key === '.' || key === '..')
    return `"${key}" is not a valid Secret key (letters, digits, '-', '_', '.')`;
  return null;
}

function checkNames(names: TrustMaterialNames): TrustMaterialNames {
  const problems = TRUST_MATERIAL_PARTS.map((p) => keyProblem(names[p])).filter(
    (p): p is string => p !== null,
  );
  if (new Set(TRUST_MATERIAL_PARTS.map((p) => names[p])).size !== TRUST_MATERIAL_PARTS.length)
    problems.push('the CA, certificate and key names must differ');
  if (problems.length > 0) throw new WardenError('ERR_CONFIG_INVALID', problems.join('; '));
  return Object.freeze({ ...names });
}

function checkExtraNames(parts: TrustMaterialNames, extras: TrustExtraNames): TrustExtraNames {
  const problems: string[] = [];
  const taken = new Set(TRUST_MATERIAL_PARTS.map((p) => parts[p]));
  for (const extra of TRUST_EXTRAS) {
    const key = extras[extra];
    const problem = keyProblem(key);
    if (problem) problems.push(problem);
    else if (taken.has(key)) problems.push(`"${key}" is already used by another entry`);
    taken.add(key);
  }
  if (problems.length > 0) throw new WardenError('ERR_CONFIG_INVALID', problems.join('; '));
  return Object.freeze({ ...extras });
}
