import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import { waitUntil } from '../../support/wait-for.js';

/** The ApiException a call rejects with, its Status body parsed. */
async function apiError(promise: Promise<unknown>): Promise<{
  code: number;
  body: Record<string, unknown> | undefined;
  headers: Record<string, string>;
}> {
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof k8s.ApiException)) throw err;
    const e = err as k8s.ApiException<unknown>;
    const body =
      typeof e.body === 'string' && e.body !== ''
        ? (JSON.parse(e.body) as Record<string, unknown>)
        : undefined;
    return { code: e.code, body, headers: (e.headers ?? {}) as Record<string, string> };
  }
  throw new Error('expected the call to fail');
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('Kubernetes API test server through the real client', () => {
  let server: KubeApiServer;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;

  beforeAll(async () => {
    server = await KubeApiServer.start({ bookmarkIntervalMs: 150 });
    kc = server.kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
  });
  afterAll(async () => {
    await server.close();
  });

  describe('CRUD and server-managed metadata', () => {
    it('creates a Secret from stringData, stores it as base64 data and never returns stringData', async () => {
      const created = await core.createNamespacedSecret({
        namespace: 'default',
        body: {
          metadata: { name: 'crud-secret' },
          stringData: { password: 'p@ss wörd' },
          data: { user: b64('app') },
        },
      });
      expect(created.data).toEqual({ user: b64('app'), password: b64('p@ss wörd') });
      expect((created as unknown as Record<string, unknown>).stringData).toBeUndefined();
      expect(created.type).toBe('Opaque');
      expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(created.metadata?.resourceVersion).toMatch(/^\d+$/);
      expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
      const read = await core.readNamespacedSecret({ name: 'crud-secret', namespace: 'default' });
      expect(read.data).toEqual(created.data);
      expect(read.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);
    });

    it('bumps the global resourceVersion on every write and keeps uid and creationTimestamp on update', async () => {
      const before = await core.readNamespacedSecret({ name: 'crud-secret', namespace: 'default' });
      const updated = await core.replaceNamespacedSecret({
        name: 'crud-secret',
        namespace: 'default',
        body: {
          metadata: { name: 'crud-secret', resourceVersion: before.metadata?.resourceVersion },
          stringData: { password: 'new' },
        },
      });
      expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(
        Number(before.metadata?.resourceVersion),
      );
      expect(updated.metadata?.uid).toBe(before.metadata?.uid);
      expect(updated.metadata?.creationTimestamp).toEqual(before.metadata?.creationTimestamp);
      expect(updated.data).toEqual({ password: b64('new') });
      expect(Number(server.store.resourceVersion)).toBeGreaterThanOrEqual(
        Number(updated.metadata?.resourceVersion),
      );
    });

    it('answers DELETE of a Secret with a Success Status and then 404', async () => {
      const existing = await core.readNamespacedSecret({
        name: 'crud-secret',
        namespace: 'default',
      });
      const status = await core.deleteNamespacedSecret({
        name: 'crud-secret',
        namespace: 'default',
      });
      expect(status).toMatchObject({
        status: 'Success',
        details: { name: 'crud-secret', kind: 'secrets', uid: existing.metadata?.uid },
      });
      expect(
        (await apiError(core.readNamespacedSecret({ name: 'crud-secret', namespace: 'default' })))
          .code,
      ).toBe(404);
    });

    it('accepts an unconditional update (no resourceVersion) of a ConfigMap, as the real server does', async () => {
      await core.createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { name: 'uncond' }, data: { a: '1' } },
      });
      const replaced = await core.replaceNamespacedConfigMap({
        name: 'uncond',
        namespace: 'default',
        body: { metadata: { name: 'uncond' }, data: { a: '2' } },
      });
      expect(replaced.data).toEqual({ a: '2' });
    });

    it('keeps the resourceVersion of a no-op update', async () => {
      const current = await core.readNamespacedConfigMap({ name: 'uncond', namespace: 'default' });
      const again = await core.replaceNamespacedConfigMap({
        name: 'uncond',
        namespace: 'default',
        body: { metadata: { name: 'uncond' }, data: { a: '2' } },
      });
      expect(again.metadata?.resourceVersion).toBe(current.metadata?.resourceVersion);
    });

    it('creates, lists and deletes cluster-scoped Namespaces with the metadata.name label', async () => {
      const ns = await core.createNamespace({ body: { metadata: { name: 'crud-ns' } } });
      expect(ns.metadata?.labels).toEqual({ 'kubernetes.io/metadata.name': 'crud-ns' });
      expect(ns.status?.phase).toBe('Active');
      const names = (await core.listNamespace()).items.map((n) => n.metadata?.name);
      expect(names).toEqual(expect.arrayContaining(['default', 'kube-system', 'crud-ns']));
      await core.createNamespacedConfigMap({
        namespace: 'crud-ns',
        body: { metadata: { name: 'inside' } },
      });
      await core.deleteNamespace({ name: 'crud-ns' });
      expect(server.store.get('configmaps', 'crud-ns', 'inside')).toBeUndefined();
    });

    it('deletes a collection by label selector, answering a list', async () => {
      for (const [name, app] of [
        ['dc-1', 'gone'],
        ['dc-2', 'gone'],
        ['dc-3', 'kept'],
      ] as const) {
        server.store.put({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name, namespace: 'collection', labels: { app } },
        });
      }
      const deleted = (await core.deleteCollectionNamespacedConfigMap({
        namespace: 'collection',
        labelSelector: 'app=gone',
      })) as unknown as { kind: string };
      expect(deleted.kind).toBe('ConfigMapList');
      // The server answers the deleted items as a list; client-node types the answer as V1Status, so only kind survives.
      expect(
        server.store
          .list('configmaps', 'collection')
          .map((c) => (c.metadata as { name: string }).name),
      ).toEqual(['dc-3']);
    });

    it('creates a name from generateName', async () => {
      const cm = await core.createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { generateName: 'gen-' } },
      });
      expect(cm.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);
    });

    it('lists across namespaces on /api/v1/{resource}', async () => {
      server.store.put({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'sa-a', namespace: 'team-a' },
      });
      server.store.put({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'sa-b', namespace: 'team-b' },
      });
      const all = await core.listServiceAccountForAllNamespaces();
      expect(all.items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`)).toEqual(
        expect.arrayContaining(['team-a/sa-a', 'team-b/sa-b']),
      );
    });

    it('serves a Lease (coordination.k8s.io), created by PUT and refusing an update without resourceVersion', async () => {
      const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
      const lease = {
        metadata: { name: 'leader', namespace: 'default' },
        spec: {
          holderIdentity: 'replica-1',
          leaseDurationSeconds: 15,
          renewTime: new Date('2026-01-01T00:00:00Z'),
        },
      };
      const created = await coordination.replaceNamespacedLease({
        name: 'leader',
        namespace: 'default',
        body: lease,
      });
      expect(created.spec?.holderIdentity).toBe('replica-1');
      const err = await apiError(
        coordination.replaceNamespacedLease({ name: 'leader', namespace: 'default', body: lease }),
      );
      expect(err.code).toBe(422);
      expect(err.body?.message).toBe(
        'leases.coordination.k8s.io "leader" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
      );
      const renewed = await coordination.replaceNamespacedLease({
        name: 'leader',
        namespace: 'default',
        body: {
          ...lease,
          metadata: { ...lease.metadata, resourceVersion: created.metadata?.resourceVersion },
          spec: { ...lease.spec, holderIdentity: 'replica-2' },
        },
      });
      expect(renewed.spec?.holderIdentity).toBe('replica-2');
    });

    it('serves the dapr.io Configuration CRD through CustomObjectsApi, with generation', async () => {
      const custom = kc.makeApiClient(k8s.CustomObjectsApi);
      const ref = {
        group: 'dapr.io',
        version: 'v1alpha1',
        namespace: 'default',
        plural: 'configurations',
      };
      const created = (await custom.createNamespacedCustomObject({
        ...ref,
        body: {
          apiVersion: 'dapr.io/v1alpha1',
          kind: 'Configuration',
          metadata: { name: 'appconfig' },
          spec: { accessControl: { trustDomain: 'public' } },
        },
      })) as { metadata: { generation: number; resourceVersion: string } };
      expect(created.metadata.generation).toBe(1);
      const updated = (await custom.replaceNamespacedCustomObject({
        ...ref,
        name: 'appconfig',
        body: {
          apiVersion: 'dapr.io/v1alpha1',
          kind: 'Configuration',
          metadata: { name: 'appconfig', resourceVersion: created.metadata.resourceVersion },
          spec: { accessControl: { trustDomain: 'example.org' } },
        },
      })) as { metadata: { generation: number } };
      expect(updated.metadata.generation).toBe(2);
      const list = (await custom.listNamespacedCustomObject(ref)) as {
        kind: string;
        items: { kind: string }[];
      };
      expect(list.kind).toBe('ConfigurationList');
      expect(list.items[0]?.kind).toBe('Configuration');
      const err = await apiError(
        custom.replaceNamespacedCustomObject({
          ...ref,
          name: 'appconfig',
          body: {
            apiVersion: 'dapr.io/v1alpha1',
            kind: 'Configuration',
            metadata: { name: 'appconfig' },
          },
        }),
      );
      expect(err.code).toBe(422);
    });

    it('answers discovery and version so KubernetesObjectApi can resolve kinds', async () => {
      const version = await kc.makeApiClient(k8s.VersionApi).getCode();
      expect(version.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
      const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'via-object-api', namespace: 'default' },
        data: { k: 'v' },
      });
      const read = (await objects.read({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'via-object-api', namespace: 'default' },
      })) as k8s.V1ConfigMap;
      expect(read.data).toEqual({ k: 'v' });
      const groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
      expect(groups.groups.map((g) => g.name)).toEqual(
        expect.arrayContaining(['coordination.k8s.io', 'dapr.io', 'authentication.k8s.io']),
      );
    });
  });

  describe('Status errors, as ApiException codes and bodies', () => {
    it('404 NotFound', async () => {
      const err = await apiError(
        core.readNamespacedSecret({ name: 'missing', namespace: 'default' }),
      );
      expect(err.code).toBe(404);
      expect(err.body).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'secrets "missing" not found',
        reason: 'NotFound',
        details: { name: 'missing', kind: 'secrets' },
        code: 404,
      });
    });

    it('404 NotFound names the group for grouped resources', async () => {
      const err = await apiError(
        kc
          .makeApiClient(k8s.CoordinationV1Api)
          .readNamespacedLease({ name: 'nope', namespace: 'default' }),
      );
      expect(err.body).toMatchObject({
        message: 'leases.coordination.k8s.io "nope" not found',
        details: { name: 'nope', group: 'coordination.k8s.io', kind: 'leases' },
      });
    });

    it('409 AlreadyExists on a second create', async () => {
      await core.createNamespacedSecret({
        namespace: 'default',
        body: { metadata: { name: 'twice' } },
      });
      const err = await apiError(
        core.createNamespacedSecret({
          namespace: 'default',
          body: { metadata: { name: 'twice' } },
        }),
      );
      expect(err.code).toBe(409);
      expect(err.body).toMatchObject({
        reason: 'AlreadyExists',
        message: 'secrets "twice" already exists',
        details: { name: 'twice', kind: 'secrets' },
      });
    });

    it('409 Conflict on an update with a stale resourceVersion', async () => {
      const first = await core.createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { name: 'stale' }, data: { v: '1' } },
      });
      const staleRv = first.metadata?.resourceVersion as string;
      await core.replaceNamespacedConfigMap({
        name: 'stale',
        namespace: 'default',
        body: { metadata: { name: 'stale', resourceVersion: staleRv }, data: { v: '2' } },
      });
      const err = await apiError(
        core.replaceNamespacedConfigMap({
          name: 'stale',
          namespace: 'default',
          body: { metadata: { name: 'stale', resourceVersion: staleRv }, data: { v: '3' } },
        }),
      );
      expect(err.code).toBe(409);
      expect(err.body).toMatchObject({
        reason: 'Conflict',
        message:
          'Operation cannot be fulfilled on configmaps "stale": the object has been modified; please apply your changes to the latest version and try again',
        details: { name: 'stale', kind: 'configmaps' },
      });
    });

    it.each([
      ['uppercase letters', 'Bad_Name'],
      ['a leading dash', '-leading'],
      ['more than 253 characters', 'a'.repeat(254)],
    ])('422 Invalid for a name with %s', async (_what, name) => {
      const err = await apiError(
        core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name } } }),
      );
      expect(err.code).toBe(422);
      expect(err.body).toMatchObject({ reason: 'Invalid', details: { name, kind: 'Secret' } });
      expect(String(err.body?.message)).toContain(
        `Secret "${name}" is invalid: metadata.name: Invalid value: "${name}"`,
      );
      const causes = (err.body?.details as { causes: { reason: string; field: string }[] }).causes;
      expect(causes[0]).toMatchObject({ reason: 'FieldValueInvalid', field: 'metadata.name' });
    });

    it('422 Invalid for a data key that is not a config key, 400 for data that is not base64', async () => {
      const badKey = await apiError(
        core.createNamespacedSecret({
          namespace: 'default',
          body: { metadata: { name: 'bad-key' }, data: { 'a/b': b64('x') } },
        }),
      );
      expect(badKey.code).toBe(422);
      expect((badKey.body?.details as { causes: { field: string }[] }).causes[0]?.field).toBe(
        'data[a/b]',
      );
      const badData = await apiError(
        core.createNamespacedSecret({
          namespace: 'default',
          body: { metadata: { name: 'bad-data' }, data: { k: '***' } },
        }),
      );
      expect(badData.code).toBe(400);
    });

    it('404 namespaces "x" not found when creating into a namespace that does not exist', async () => {
      const err = await apiError(
        core.createNamespacedSecret({ namespace: 'no-such-ns', body: { metadata: { name: 's' } } }),
      );
      expect(err.code).toBe(404);
      expect(err.body).toMatchObject({
        message: 'namespaces "no-such-ns" not found',
        details: { name: 'no-such-ns', kind: 'namespaces' },
      });
    });

    it('403 Forbidden with the real message shape, per verb, namespace and resourceName', async () => {
      server.addToken('reader-token', {
        username: 'system:serviceaccount:apps:reader',
        rules: [
          {
            verbs: ['get'],
            resources: ['secrets'],
            apiGroups: [''],
            namespaces: ['default'],
            resourceNames: ['allowed'],
          },
        ],
      });
      server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'allowed', namespace: 'default' },
        stringData: { k: 'v' },
      });
      const limited = server.kubeConfig('reader-token').makeApiClient(k8s.CoreV1Api);
      expect(
        (await limited.readNamespacedSecret({ name: 'allowed', namespace: 'default' })).data,
      ).toEqual({ k: b64('v') });

      const other = await apiError(
        limited.readNamespacedSecret({ name: 'other', namespace: 'default' }),
      );
      expect(other.code).toBe(403);
      expect(other.body).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message:
          'secrets "other" is forbidden: User "system:serviceaccount:apps:reader" cannot get resource "secrets" in API group "" in the namespace "default"',
        reason: 'Forbidden',
        details: { name: 'other', kind: 'secrets' },
        code: 403,
      });
      const list = await apiError(limited.listNamespacedSecret({ namespace: 'default' }));
      expect(list.body?.message).toBe(
        'secrets is forbidden: User "system:serviceaccount:apps:reader" cannot list resource "secrets" in API group "" in the namespace "default"',
      );
      const cluster = await apiError(limited.listNamespace());
      expect(cluster.body?.message).toBe(
        'namespaces is forbidden: User "system:serviceaccount:apps:reader" cannot list resource "namespaces" in API group "" at the cluster scope',
      );
    });

    it('401 Unauthorized for an unknown token, and the request log never holds a token', async () => {
      const stranger = server.kubeConfig('not-a-known-token').makeApiClient(k8s.CoreV1Api);
      const err = await apiError(stranger.listNamespacedSecret({ namespace: 'default' }));
      expect(err.code).toBe(401);
      const log = JSON.stringify(server.requests);
      expect(log).not.toContain('not-a-known-token');
      expect(log).not.toContain('reader-token');
      expect(log).not.toContain(server.adminToken);
    });
  });

  describe('selectors and paging', () => {
    beforeAll(() => {
      const put = (name: string, labels: Record<string, string>): void => {
        server.store.put({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name, namespace: 'selectors', labels },
        });
      };
      put('web-prod', { app: 'web', tier: 'prod' });
      put('web-dev', { app: 'web', tier: 'dev', beta: 'true' });
      put('db-prod', { app: 'db', tier: 'prod' });
      put('unlabelled', {});
    });

    it.each([
      ['app=web', ['web-dev', 'web-prod']],
      ['app==web,tier=prod', ['web-prod']],
      ['app!=web', ['db-prod', 'unlabelled']],
      ['tier in (prod, dev)', ['db-prod', 'web-dev', 'web-prod']],
      ['tier notin (prod)', ['unlabelled', 'web-dev']],
      ['beta', ['web-dev']],
      ['!beta,app', ['db-prod', 'web-prod']],
    ])('labelSelector %s selects %j', async (labelSelector, expected) => {
      const list = await core.listNamespacedConfigMap({ namespace: 'selectors', labelSelector });
      expect(list.items.map((c) => c.metadata?.name).sort()).toEqual(expected);
    });

    it('selects by fieldSelector metadata.name and refuses an unsupported field with 400', async () => {
      const list = await core.listNamespacedConfigMap({
        namespace: 'selectors',
        fieldSelector: 'metadata.name=db-prod',
      });
      expect(list.items.map((c) => c.metadata?.name)).toEqual(['db-prod']);
      expect(
        (
          await apiError(
            core.listNamespacedConfigMap({ namespace: 'selectors', fieldSelector: 'spec.foo=x' }),
          )
        ).code,
      ).toBe(400);
      expect(
        (
          await apiError(
            core.listNamespacedConfigMap({ namespace: 'selectors', labelSelector: 'a in (' }),
          )
        ).code,
      ).toBe(400);
    });

    it('pages with limit and continue', async () => {
      const first = await core.listNamespacedConfigMap({ namespace: 'selectors', limit: 3 });
      expect(first.items).toHaveLength(3);
      expect(first.metadata?.remainingItemCount).toBe(1);
      const second = await core.listNamespacedConfigMap({
        namespace: 'selectors',
        limit: 3,
        _continue: first.metadata?._continue as string,
      });
      expect(second.items.map((c) => c.metadata?.name)).toEqual(['web-prod']);
      expect(second.metadata?._continue).toBeUndefined();
    });
  });

  describe('PATCH', () => {
    beforeAll(() => {
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'patched', namespace: 'default' },
        data: { a: '1', b: '2' },
      });
    });

    it('applies a merge patch (null removes a key)', async () => {
      const cm = await core.patchNamespacedConfigMap(
        { name: 'patched', namespace: 'default', body: { data: { b: null, c: '3' } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      expect(cm.data).toEqual({ a: '1', c: '3' });
    });

    it('applies a strategic merge patch to maps like a merge patch', async () => {
      const cm = await core.patchNamespacedConfigMap(
        {
          name: 'patched',
          namespace: 'default',
          body: { metadata: { labels: { team: 'x' } }, data: { d: '4' } },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
      );
      expect(cm.data).toEqual({ a: '1', c: '3', d: '4' });
      expect(cm.metadata?.labels).toEqual({ team: 'x' });
    });

    it('applies a JSON patch (the client default) and answers 422 when a test operation fails', async () => {
      const cm = await core.patchNamespacedConfigMap({
        name: 'patched',
        namespace: 'default',
        body: [
          { op: 'test', path: '/data/a', value: '1' },
          { op: 'replace', path: '/data/a', value: 'one' },
          { op: 'remove', path: '/data/d' },
        ],
      });
      expect(cm.data).toEqual({ a: 'one', c: '3' });
      const err = await apiError(
        core.patchNamespacedConfigMap({
          name: 'patched',
          namespace: 'default',
          body: [{ op: 'test', path: '/data/a', value: 'nope' }],
        }),
      );
      expect(err.code).toBe(422);
    });

    it('refuses a patch carrying a stale resourceVersion with 409 Conflict', async () => {
      const err = await apiError(
        core.patchNamespacedConfigMap(
          {
            name: 'patched',
            namespace: 'default',
            body: { metadata: { resourceVersion: '1' }, data: { a: 'x' } },
          },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ),
      );
      expect(err.code).toBe(409);
      expect(err.body?.reason).toBe('Conflict');
    });

    it('server-side apply creates, updates, removes fields it stopped applying, and records managedFields', async () => {
      const ssa = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);
      const apply = (
        data: Record<string, string>,
        fieldManager = 'warden',
      ): Promise<k8s.V1ConfigMap> =>
        core.patchNamespacedConfigMap(
          {
            name: 'applied',
            namespace: 'default',
            fieldManager,
            body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied' }, data },
          },
          ssa,
        );
      const created = await apply({ 'ca.crt': 'A', extra: 'E' });
      expect(created.data).toEqual({ 'ca.crt': 'A', extra: 'E' });
      const updated = await apply({ 'ca.crt': 'B' });
      expect(updated.data).toEqual({ 'ca.crt': 'B' });
      const managers = updated.metadata?.managedFields?.map((m) => `${m.manager}/${m.operation}`);
      expect(managers).toEqual(['warden/Apply']);
      expect(updated.metadata?.managedFields?.[0]?.fieldsV1).toEqual({
        'f:data': { '.': {}, 'f:ca.crt': {} },
      });
    });

    it('server-side apply refuses to take a field another manager owns (409 FieldManagerConflict) unless forced', async () => {
      const ssa = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);
      const body = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'applied' },
        data: { 'ca.crt': 'C' },
      };
      const err = await apiError(
        core.patchNamespacedConfigMap(
          { name: 'applied', namespace: 'default', fieldManager: 'someone-else', body },
          ssa,
        ),
      );
      expect(err.code).toBe(409);
      expect(err.body).toMatchObject({
        reason: 'Conflict',
        message: 'Apply failed with 1 conflict: conflict with "warden" using v1: .data.ca.crt',
        details: { causes: [{ reason: 'FieldManagerConflict', field: '.data.ca.crt' }] },
      });
      const forced = await core.patchNamespacedConfigMap(
        { name: 'applied', namespace: 'default', fieldManager: 'someone-else', force: true, body },
        ssa,
      );
      expect(forced.data).toEqual({ 'ca.crt': 'C' });
      expect(forced.metadata?.managedFields?.map((m) => m.manager)).toEqual(['someone-else']);
    });

    it('server-side apply needs a fieldManager (400), and an unknown patch type is 415', async () => {
      const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied' }, data: {} };
      expect(
        (
          await apiError(
            core.patchNamespacedConfigMap(
              { name: 'applied', namespace: 'default', body },
              k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply),
            ),
          )
        ).code,
      ).toBe(400);
      expect(
        (
          await apiError(
            core.patchNamespacedConfigMap(
              { name: 'applied', namespace: 'default', body },
              k8s.setHeaderOptions('Content-Type', 'application/x-unknown'),
            ),
          )
        ).code,
      ).toBe(415);
    });

    it('merges stringData into a Secret on patch', async () => {
      server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'patched-secret', namespace: 'default' },
        stringData: { a: '1' },
      });
      const patched = await core.patchNamespacedSecret(
        { name: 'patched-secret', namespace: 'default', body: { stringData: { b: '2' } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      expect(patched.data).toEqual({ a: b64('1'), b: b64('2') });
    });
  });

  describe('watch', () => {
    type Event = {
      type: string;
      object: {
        metadata?: { name?: string; resourceVersion?: string };
        code?: number;
        reason?: string;
      };
    };

    async function startWatch(
      path: string,
      query: Record<string, string | number | boolean | undefined>,
    ): Promise<{ events: Event[]; done: () => unknown; ended: () => boolean; abort: () => void }> {
      const events: Event[] = [];
      let doneWith: unknown = 'pending';
      const controller = await new k8s.Watch(kc).watch(
        path,
        query,
        (type, object) => events.push({ type, object: object as Event['object'] }),
        (err) => {
          doneWith = err;
        },
      );
      return {
        events,
        done: () => doneWith,
        ended: () => doneWith !== 'pending',
        abort: () => controller.abort(),
      };
    }

    it('streams ADDED, MODIFIED and DELETED from a resourceVersion, and bookmarks when asked', async () => {
      const from = server.store.resourceVersion;
      const w = await startWatch('/api/v1/namespaces/watched/configmaps', {
        resourceVersion: from,
        allowWatchBookmarks: true,
      });
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'w1', namespace: 'watched' },
        data: { v: '1' },
      });
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'w1', namespace: 'watched' },
        data: { v: '2' },
      });
      server.store.delete('configmaps', 'watched', 'w1');
      await waitUntil(() => w.events.some((e) => e.type === 'DELETED'), 'the DELETED event');
      await waitUntil(() => w.events.some((e) => e.type === 'BOOKMARK'), 'a periodic bookmark');
      const changes = w.events.filter((e) => e.type !== 'BOOKMARK');
      expect(changes.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual([
        'ADDED w1',
        'MODIFIED w1',
        'DELETED w1',
      ]);
      const rvs = changes.map((e) => Number(e.object.metadata?.resourceVersion));
      expect(rvs).toEqual([...rvs].sort((a, b) => a - b));
      const bookmark = w.events.find((e) => e.type === 'BOOKMARK') as Event;
      expect(Number(bookmark.object.metadata?.resourceVersion)).toBeGreaterThanOrEqual(
        rvs[2] as number,
      );
      w.abort();
    });

    it('replays history from an older resourceVersion and sends initial state for resourceVersion 0', async () => {
      const from = server.store.resourceVersion;
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'replayed', namespace: 'replay' },
      });
      const replay = await startWatch('/api/v1/namespaces/replay/configmaps', {
        resourceVersion: from,
      });
      await waitUntil(() => replay.events.length === 1, 'the replayed event');
      expect(replay.events[0]?.type).toBe('ADDED');
      replay.abort();
      const initial = await startWatch('/api/v1/namespaces/replay/configmaps', {
        resourceVersion: '0',
      });
      await waitUntil(() => initial.events.length === 1, 'the initial state');
      expect(initial.events[0]?.object.metadata?.name).toBe('replayed');
      initial.abort();
    });

    it('ends the initial events with an initial-events-end bookmark when sendInitialEvents is asked for', async () => {
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'initial', namespace: 'initial-events' },
      });
      const w = await startWatch('/api/v1/namespaces/initial-events/configmaps', {
        sendInitialEvents: true,
        resourceVersionMatch: 'NotOlderThan',
        allowWatchBookmarks: true,
      });
      await waitUntil(() => w.events.length >= 2, 'the initial events');
      expect(w.events[0]).toMatchObject({
        type: 'ADDED',
        object: { metadata: { name: 'initial' } },
      });
      expect(w.events[1]).toMatchObject({
        type: 'BOOKMARK',
        object: { metadata: { annotations: { 'k8s.io/initial-events-end': 'true' } } },
      });
      w.abort();
    });

    it('turns a label change into ADDED/DELETED for a selector watch', async () => {
      const from = server.store.resourceVersion;
      const w = await startWatch('/api/v1/namespaces/labelled/configmaps', {
        resourceVersion: from,
        labelSelector: 'app=web',
      });
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'l1', namespace: 'labelled', labels: { app: 'db' } },
      });
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'l1', namespace: 'labelled', labels: { app: 'web' } },
      });
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'l1', namespace: 'labelled', labels: { app: 'other' } },
      });
      await waitUntil(() => w.events.length === 2, 'two events');
      expect(w.events.map((e) => e.type)).toEqual(['ADDED', 'DELETED']);
      w.abort();
    });

    it('answers a too-old resourceVersion with an ERROR event carrying a 410 Expired Status, then ends the stream', async () => {
      const old = server.store.resourceVersion;
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'moves-on', namespace: 'default' },
      });
      server.expireHistory();
      const w = await startWatch('/api/v1/namespaces/default/configmaps', { resourceVersion: old });
      await waitUntil(() => w.ended(), 'the stream to end');
      expect(w.events).toHaveLength(1);
      expect(w.events[0]?.type).toBe('ERROR');
      expect(w.events[0]?.object).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${old} (${Number(server.store.resourceVersion) + 1})`,
        reason: 'Expired',
        code: 410,
      });
      expect(w.done()).toBeNull();
    });

    it('ends a watch after timeoutSeconds, and on dropWatches()', async () => {
      const timed = await startWatch('/api/v1/namespaces/default/secrets', {
        resourceVersion: server.store.resourceVersion,
        timeoutSeconds: 1,
      });
      await waitUntil(() => timed.ended(), 'the timeout');
      const dropped = await startWatch('/api/v1/namespaces/default/secrets', {
        resourceVersion: server.store.resourceVersion,
      });
      await waitUntil(() => server.activeWatchCount > 0, 'the watch to register');
      server.dropWatches();
      await waitUntil(() => dropped.ended(), 'the drop');
      expect(dropped.done()).toBeNull();
    });
  });

  describe('informer (ListWatch)', () => {
    it('lists then watches, resumes from its resourceVersion after a drop, and re-lists after 410', async () => {
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'pre-existing', namespace: 'informed' },
      });
      const informer = k8s.makeInformer(kc, '/api/v1/namespaces/informed/configmaps', () =>
        core.listNamespacedConfigMap({ namespace: 'informed' }),
      );
      const seen: string[] = [];
      informer.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
      informer.on('update', (o) => seen.push(`update ${o.metadata?.name}`));
      informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
      // client-node's informer stops on a non-410 error; restarting is the caller's job (and stop() itself aborts with one).
      let stopping = false;
      informer.on('error', () => {
        if (!stopping) setTimeout(() => void informer.start(), 50);
      });
      const requestsFor = (verb: string): number =>
        server.requests.filter(
          (r) => r.path === '/api/v1/namespaces/informed/configmaps' && r.verb === verb,
        ).length;

      await informer.start();
      await waitUntil(
        () => server.activeWatchCount > 0 && requestsFor('watch') === 1,
        'the first watch',
      );
      expect(requestsFor('list')).toBe(1);
      expect(seen).toEqual(['add pre-existing']);

      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'live', namespace: 'informed' },
        data: { v: '1' },
      });
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'live', namespace: 'informed' },
        data: { v: '2' },
      });
      await waitUntil(() => seen.includes('update live'), 'the update');

      // A clean drop: the informer re-watches from where it was, without listing again.
      const watchesBefore = requestsFor('watch');
      server.dropWatches();
      await waitUntil(() => requestsFor('watch') === watchesBefore + 1, 'the re-watch');
      const rewatch = server.requests
        .filter((r) => r.verb === 'watch' && r.path === '/api/v1/namespaces/informed/configmaps')
        .at(-1);
      expect(rewatch?.query.resourceVersion).toBe(
        (informer as unknown as k8s.ListWatch<k8s.V1ConfigMap>).latestResourceVersion(),
      );
      expect(requestsFor('list')).toBe(1);

      // History expired while the informer was behind: 410, then a fresh list.
      server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'elsewhere', namespace: 'default' },
      });
      server.expireHistory();
      server.dropWatches();
      await waitUntil(() => requestsFor('list') === 2, 'the re-list');
      server.store.delete('configmaps', 'informed', 'pre-existing');
      await waitUntil(() => seen.includes('delete pre-existing'), 'the delete after the re-list');
      expect(informer.list('informed').map((o) => o.metadata?.name)).toEqual(['live']);
      stopping = true;
      await informer.stop();
    });
  });

  describe('TokenReview', () => {
    const sentry = 'spiffe://cluster.local/ns/dapr-system/dapr-sentry';

    beforeAll(() => {
      server.addServiceAccountToken('pod-token', {
        namespace: 'apps',
        serviceAccount: 'orders',
        podName: 'orders-7d9f',
        podUid: 'uid-123',
        audiences: [sentry],
      });
      server.addTokenReview('expired-token', {
        username: 'x',
        error: '[invalid bearer token, service account token has expired]',
      });
    });

    it('authenticates a pod-bound service-account token for an audience it carries', async () => {
      const auth = kc.makeApiClient(k8s.AuthenticationV1Api);
      const review = await auth.createTokenReview({
        body: { spec: { token: 'pod-token', audiences: [sentry, 'dapr.io/sentry'] } },
      });
      expect(review.status).toEqual({
        authenticated: true,
        user: {
          username: 'system:serviceaccount:apps:orders',
          uid: 'sa-apps-orders',
          groups: ['system:serviceaccounts', 'system:serviceaccounts:apps', 'system:authenticated'],
          extra: {
            'authentication.kubernetes.io/pod-name': ['orders-7d9f'],
            'authentication.kubernetes.io/pod-uid': ['uid-123'],
          },
        },
        audiences: [sentry],
      });
    });

    it.each([
      [
        'a token whose audiences do not intersect',
        'pod-token',
        ['dapr.io/sentry'],
        'token audiences ["spiffe://cluster.local/ns/dapr-system/dapr-sentry"] is invalid for the target audiences ["dapr.io/sentry"]',
      ],
      ['an unknown token', 'who-knows', [sentry], 'token lookup failed'],
      ['an expired token', 'expired-token', [sentry], 'has expired'],
      [
        'a token reviewed for the API server audiences it lacks',
        'pod-token',
        [],
        'is invalid for the target audiences',
      ],
    ])('does not authenticate %s', async (_what, token, audiences, error) => {
      const review = await kc
        .makeApiClient(k8s.AuthenticationV1Api)
        .createTokenReview({ body: { spec: { token, audiences } } });
      expect(review.status?.authenticated).toBeUndefined(); // omitempty on the wire
      expect(review.status?.user).toEqual({});
      expect(review.status?.error).toContain(error);
    });

    it('requires create on tokenreviews', async () => {
      server.addToken('no-review', { username: 'nobody', rules: [] });
      const err = await apiError(
        server
          .kubeConfig('no-review')
          .makeApiClient(k8s.AuthenticationV1Api)
          .createTokenReview({ body: { spec: { token: 'pod-token' } } }),
      );
      expect(err.code).toBe(403);
      expect(err.body?.message).toBe(
        'tokenreviews.authentication.k8s.io is forbidden: User "nobody" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope',
      );
    });
  });
});

describe('Kubernetes API test server fault injection', () => {
  let server: KubeApiServer;
  let core: k8s.CoreV1Api;

  beforeAll(async () => {
    server = await KubeApiServer.start();
    core = server.kubeConfig().makeApiClient(k8s.CoreV1Api);
    server.store.put({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'faulty', namespace: 'default' },
      stringData: { k: 'v' },
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it('fails the next N matching requests with the given status, then answers normally', async () => {
    server.failNext({ status: 500, count: 2, path: '/api/v1/namespaces/default/secrets/faulty' });
    await core
      .readNamespacedSecret({ name: 'other-unaffected', namespace: 'default' })
      .catch(() => undefined);
    const first = await apiError(
      core.readNamespacedSecret({ name: 'faulty', namespace: 'default' }),
    );
    expect(first.code).toBe(500);
    expect(first.body).toMatchObject({ reason: 'InternalError', code: 500 });
    expect(
      (await apiError(core.readNamespacedSecret({ name: 'faulty', namespace: 'default' }))).code,
    ).toBe(500);
    expect(
      (await core.readNamespacedSecret({ name: 'faulty', namespace: 'default' })).data,
    ).toEqual({ k: b64('v') });
  });

  it('answers 429 with Retry-After and details.retryAfterSeconds', async () => {
    server.failNext({ status: 429, retryAfter: 3 });
    const err = await apiError(core.readNamespacedSecret({ name: 'faulty', namespace: 'default' }));
    expect(err.code).toBe(429);
    expect(err.headers['retry-after']).toBe('3');
    expect(err.body).toMatchObject({
      reason: 'TooManyRequests',
      details: { retryAfterSeconds: 3 },
    });
  });

  it('holds requests unanswered until released', async () => {
    const hang = server.hang({ path: '/api/v1/namespaces/default/secrets/faulty' });
    let answered = false;
    const pending = core
      .readNamespacedSecret({ name: 'faulty', namespace: 'default' })
      .then((s) => {
        answered = true;
        return s;
      });
    await waitUntil(() => hang.held === 1, 'the request to be held');
    expect(answered).toBe(false);
    hang.release();
    expect((await pending).metadata?.name).toBe('faulty');
  });

  it('stops (connections refused, objects kept) and restarts on the same port', async () => {
    const port = server.port;
    await server.stop();
    await expect(
      core.readNamespacedSecret({ name: 'faulty', namespace: 'default' }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await server.restart();
    expect(server.port).toBe(port);
    expect(
      (await core.readNamespacedSecret({ name: 'faulty', namespace: 'default' })).data,
    ).toEqual({ k: b64('v') });
  });

  it('records each request with its verb, resource, user and status', async () => {
    server.clearRequests();
    await core.readNamespacedSecret({ name: 'faulty', namespace: 'default' });
    expect(server.requests).toEqual([
      expect.objectContaining({
        method: 'GET',
        verb: 'get',
        resource: 'secrets',
        namespace: 'default',
        name: 'faulty',
        user: 'kubernetes-admin',
        status: 200,
      }),
    ]);
  });

  it('is trusted only through its own CA', async () => {
    const other = await KubeApiServer.start();
    try {
      const kc = other.kubeConfig(other.adminToken);
      const cluster = kc.getCurrentCluster();
      const wrongCa = new k8s.KubeConfig();
      wrongCa.loadFromOptions({
        clusters: [
          {
            name: 'c',
            server: other.url,
            caData: Buffer.from(server.caPem).toString('base64'),
            skipTLSVerify: false,
          },
        ],
        users: [{ name: 'u', token: other.adminToken }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      expect(cluster?.server).toBe(other.url);
      await expect(wrongCa.makeApiClient(k8s.CoreV1Api).listNamespace()).rejects.toMatchObject({
        type: 'system',
      });
    } finally {
      await other.close();
    }
  });
});
