import { readEnv } from '../../src/shared/env.js';
import { silentLogger, type Logger } from '../../src/shared/logger.js';
import { systemClock, type Clock } from '../../src/shared/clock.js';
import type { LoadedComponent } from '../../src/secrets/components/component.js';
import type { StoreContext } from '../../src/secrets/store-factory.js';

/** A secret-store Component and a StoreContext for calling a store factory directly. */
export function storeFactoryArgs(
  type: string,
  metadata: Record<string, string>,
  options: { name?: string; env?: Record<string, string>; logger?: Logger; clock?: Clock; workingDirectory?: string } = {},
): [LoadedComponent, StoreContext] {
  const name = options.name ?? 'teststore';
  const component: LoadedComponent = {
    source: 'test',
    manifest: {
      apiVersion: 'dapr.io/v1alpha1',
      kind: 'Component',
      metadata: { name },
      spec: { type, version: 'v1', metadata: Object.entries(metadata).map(([n, value]) => ({ name: n, value })) },
    },
  };
  return [
    component,
    {
      componentName: name,
      metadata,
      logger: options.logger ?? silentLogger,
      clock: options.clock ?? systemClock,
      env: readEnv(options.env ?? {}),
      mode: 'standalone',
      workingDirectory: options.workingDirectory ?? '/',
    },
  ];
}

/** The WardenError code a promise rejects with ('resolved' when it does not). */
export async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? `non-coded: ${String(err)}`;
  }
  return 'resolved';
}
