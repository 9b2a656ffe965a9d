import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  KubeReflector,
  type KubeReflectorOptions,
  type ReflectorEvent,
} from '../../../src/shared/kube-reflector.js';
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

function startReflector(
  choices: Pick<KubeReflectorOptions<string>, 'equals' | 'relistAfterWatchFailure'> = {},
): {
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
    ...choices,
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

  it('with equals and relistAfterWatchFailure, tells only real changes and re-lists after a lost watch, telling what it missed', async () => {
    const { reflector, events } = startReflector({
      equals: (a, b) => a === b,
      relistAfterWatchFailure: true,
    });
    try {
      await reflector.whenSynced();
      events.splice(0);
      server.store.put({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'cm-4', namespace: 'mirror', labels: { relabelled: 'yes' } },
        data: { value: 'v4' },
      });
      putConfigMap('marker', 'm');
      await waitUntil(() => events.length > 0, 'the marker');
      // The label-only update came first and was not told.
      expect(events).toEqual([{ type: 'upsert', key: 'mirror/marker', value: 'm' }]);

      events.splice(0);
      await server.stop();
      await waitUntil(() => !reflector.connected, 'the reflector to notice');
      putConfigMap('cm-4', 'v4-while-away');
      server.store.delete('configmaps', 'mirror', 'marker');
      await server.restart();
      await reflector.whenConnected();
      // Connected again only once a fresh list is stored, so the mirror is complete already.
      expect(reflector.get('mirror', 'cm-4')).toBe('v4-while-away');
      expect(reflector.get('mirror', 'marker')).toBeUndefined();
      expect(events).toEqual([
        { type: 'upsert', key: 'mirror/cm-4', value: 'v4-while-away' },
        { type: 'delete', key: 'mirror/marker', value: 'm' },
        { type: 'relist' },
      ]);
    } finally {
      await reflector.stop();
    }
  });
});
