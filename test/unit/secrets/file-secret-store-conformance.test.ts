import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readEnv } from '../../../src/shared/env.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { systemClock } from '../../../src/shared/clock.js';
import {
  CONFORMANCE_MULTI_KEY_SECRETS,
  CONFORMANCE_SINGLE_KEY_SECRETS,
} from '../../../src/secrets/secret-store.js';
import { createFileSecretStore } from '../../../src/secrets/stores/file/file-secret-store.js';
import type { LoadedComponent } from '../../../src/secrets/components/component.js';
import { describeSecretStoreConformance } from '../../conformance/secret-store-conformance.js';
import { makeTempDir } from '../../support/temp-directory.js';

const component: LoadedComponent = {
  source: 'test',
  manifest: { apiVersion: 'dapr.io/v1alpha1', kind: 'Component', metadata: { name: 'local' }, spec: { type: 'secretstores.local.file' } },
};

async function fileStoreSubject(multiValued: boolean) {
  const dir = await makeTempDir('file-store');
  const file = path.join(dir.path, 'secrets.json');
  const document: Record<string, unknown> = {};
  if (multiValued) {
    Object.assign(document, CONFORMANCE_SINGLE_KEY_SECRETS, CONFORMANCE_MULTI_KEY_SECRETS);
  } else {
    for (const data of Object.values(CONFORMANCE_SINGLE_KEY_SECRETS)) Object.assign(document, data);
  }
  await writeFile(file, JSON.stringify(document));
  const store = await createFileSecretStore(component, {
    componentName: 'local',
    metadata: { secretsFile: file, multiValued: String(multiValued) },
    logger: silentLogger,
    clock: systemClock,
    env: readEnv({}),
    mode: 'standalone',
    workingDirectory: dir.path,
  });
  return { store, cleanup: () => dir.remove() };
}

describeSecretStoreConformance('secretstores.local.file (single-valued)', () => fileStoreSubject(false));
describeSecretStoreConformance('secretstores.local.file (multiValued)', () => fileStoreSubject(true));
