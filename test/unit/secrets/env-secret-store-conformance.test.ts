import { readEnv } from '../../../src/shared/env.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { systemClock } from '../../../src/shared/clock.js';
import { CONFORMANCE_SINGLE_KEY_SECRETS } from '../../../src/secrets/secret-store.js';
import { createEnvSecretStore } from '../../../src/secrets/stores/env/env-secret-store.js';
import type { LoadedComponent } from '../../../src/secrets/components/component.js';
import { describeSecretStoreConformance } from '../../conformance/secret-store-conformance.js';

const component: LoadedComponent = {
  source: 'test',
  manifest: { apiVersion: 'dapr.io/v1alpha1', kind: 'Component', metadata: { name: 'envstore' }, spec: { type: 'secretstores.local.env' } },
};

function envStoreSubject(prefix: string) {
  const env: Record<string, string> = { PATH: '/usr/bin', DAPR_API_TOKEN: 'must-not-leak' };
  for (const [name, data] of Object.entries(CONFORMANCE_SINGLE_KEY_SECRETS)) env[prefix + name] = data[name] as string;
  return async () => ({
    store: await createEnvSecretStore(component, {
      componentName: 'envstore',
      metadata: prefix === '' ? {} : { prefix },
      logger: silentLogger,
      clock: systemClock,
      env: readEnv(env),
      mode: 'standalone',
      workingDirectory: '/',
    }),
    cleanup: async () => undefined,
  });
}

describeSecretStoreConformance('secretstores.local.env (no prefix)', envStoreSubject(''));
describeSecretStoreConformance('secretstores.local.env (prefix MYAPP_)', envStoreSubject('MYAPP_'));
