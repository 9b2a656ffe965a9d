import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { KubeReflector, type ReflectorEvent } from '../../../src/shared/kube-reflector.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import { waitUntil } from '../../support/wait-for.js';

/*
 * The list-then-watch mirror on its own, over ConfigMaps of one namespace, through the real
 * client: paging, change events, and what it reports while the API server is away.
 */

let server: KubeApiServer;
const pageSizes: number[] = [];

function putConfigMap(name: string, value: string): void {
  server.store.put({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'mirror' },
    data: { value },
  });
}

function startReflector(): {
  reflector: KubeReflector<string>;
  events: Array<ReflectorEvent<string>>;
} {
  const core = server.kubeConfig().makeApiClient(CoreV1Api);
  const reflector = new KubeReflector<string>({
    kubeConfig: server.kubeConfig(),
    name: 'configmaps',
    watchPath: '/api/v1/namespaces/mirror/configmaps',
    listPage: async (continueToken) => {
      const page = await core.listNamespacedConfigMap({
        namespace: 'mirror',
        limit: 2,
        ...(continueToken === undefined ? {} : { _continue: continueToken }),
      });
      pageSizes.push(page.items.length);
      return {
        items: page.items,
        resourceVersion: page.metadata?.resourceVersion ?? '',
        continueToken: page.metadata?._continue,
      };
    },
    // Keep only the value; a ConfigMap without one is not kept.
    project: (object) => (object as { data?: { value?: string } }).data?.value ?? null,
    logger: silentLogger,
    backoffBaseMs: 20,
    backoffCapMs: 100,
  });
  const events: Array<ReflectorEvent<string>> = [];
  reflector.subscribe((event) => events.push(event));
  reflector.start();
  return { reflector, events };
}

beforeAll(async () => {
  server = await KubeApiServer.start({ namespaces: ['default', 'mirror'] });
  for (let i = 1; i <= 5; i++) putConfigMap(`cm-${i}`, `v${i}`);
});

afterAll(async () => {
  await server.close();
});

describe('KubeReflector', () => {
  it('lists every page, then follows changes, telling subscribers', async () => {
    const { reflector, events } = startReflector();
    try {
      expect(reflector.hasSynced).toBe(false);
      await reflector.whenSynced();
      expect(pageSizes).toEqual([2, 2, 1]);
      expect(reflector.size).toBe(5);
      expect(reflector.get('mirror', 'cm-3')).toBe('v3');
      expect(events).toEqual([{ type: 'relist' }]);

      putConfigMap('cm-6', 'v6');
      putConfigMap('cm-1', 'changed');
      server.store.delete('configmaps', 'mirror', 'cm-2');
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'cm-3', namespace: 'mirror' },
        data: {},
      });
      await waitUntil(() => events.length >= 5, 'four changes to arrive');
      expect(events.slice(1)).toEqual([
        { type: 'upsert', key: 'mirror/cm-6', value: 'v6' },
        { type: 'upsert', key: 'mirror/cm-1', value: 'changed' },
        { type: 'delete', key: 'mirror/cm-2', value: 'v2' },
        // Projected to nothing: it leaves the mirror.
        { type: 'delete', key: 'mirror/cm-3', value: 'v3' },
      ]);
      expect(reflector.values().sort()).toEqual(['changed', 'v4', 'v5', 'v6']);
    } finally {
      await reflector.stop();
      await reflector.stop(); // idempotent
    }
    expect(reflector.hasSynced).toBe(false);
  });

  it('keeps its data but reports the disconnection while the API server is away, then catches up', async () => {
    const { reflector } = startReflector();
    try {
      await reflector.whenSynced();
      await waitUntil(() => reflector.connected, 'the watch to be established');
      expect(reflector.disconnectedForMs()).toBe(0);
      await server.stop();
      putConfigMap('while-away', 'x');
      await waitUntil(() => !reflector.connected, 'the reflector to notice');
      expect(reflector.hasSynced).toBe(true);
      expect(reflector.get('mirror', 'cm-4')).toBe('v4');
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(reflector.disconnectedForMs()).toBeGreaterThan(0);
      await server.restart();
      await waitUntil(
        () => reflector.get('mirror', 'while-away') === 'x',
        'the change made while away',
      );
      await waitUntil(() => reflector.connected, 'the reflector to reconnect');
      expect(reflector.disconnectedForMs()).toBe(0);
    } finally {
      await reflector.stop();
    }
  });
});
