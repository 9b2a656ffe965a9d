import { describe, expect, it } from '@jest/globals';
import { createEnvSecretStore, isReservedEnvName } from '../../../src/secrets/stores/env/env-secret-store.js';
import { rejectionCode, storeFactoryArgs } from '../../../test/support/store-context.js';

const ENV = {
  MYAPP_DB_PASSWORD: 'db-pw',
  MYAPP_EMPTY: '',
  OTHER_VAR: 'other',
  DAPR_API_TOKEN: 'dapr-token',
  APP_API_TOKEN: 'app-token',
  MYAPP_DAPR_X: 'not-reserved-after-prefix',
  DAPR_HTTP_PORT: '3500',
};

function envStore(prefix?: string) {
  return createEnvSecretStore(...storeFactoryArgs('secretstores.local.env', prefix === undefined ? {} : { prefix }, { env: ENV }));
}

describe('secretstores.local.env', () => {
  it.each([
    ['APP_API_TOKEN', true],
    ['DAPR_API_TOKEN', true],
    ['DAPR_', true],
    ['dapr_api_token', true],
    ['MYAPP_DAPR_X', false],
    ['APP_API_TOKEN_2', false],
    ['PATH', false],
  ])('treats %s as reserved: %s', (name, reserved) => {
    expect(isReservedEnvName(name)).toBe(reserved);
  });

  it.each([
    ['a variable with the prefix, named without it', 'MYAPP_', 'DB_PASSWORD', { DB_PASSWORD: 'db-pw' }],
    ['a variable set to the empty string', 'MYAPP_', 'EMPTY', { EMPTY: '' }],
    ['a prefixed variable whose rest starts with DAPR_', 'MYAPP_', 'DAPR_X', { DAPR_X: 'not-reserved-after-prefix' }],
    ['any variable when there is no prefix', undefined, 'OTHER_VAR', { OTHER_VAR: 'other' }],
  ])('returns %s', async (_what, prefix, name, expected) => {
    const store = await envStore(prefix);
    expect(await store.get(name)).toEqual(expected);
  });

  it.each([
    ['a variable that is not set (not "")', undefined, 'NOT_SET_ANYWHERE'],
    ['a variable outside the prefix', 'MYAPP_', 'OTHER_VAR'],
    ['APP_API_TOKEN', undefined, 'APP_API_TOKEN'],
    ['DAPR_API_TOKEN', undefined, 'DAPR_API_TOKEN'],
    ['a Object.prototype name', undefined, 'constructor'],
  ])('answers ERR_SECRET_NOT_FOUND for %s', async (_what, prefix, name) => {
    const store = await envStore(prefix);
    expect(await rejectionCode(store.get(name))).toBe('ERR_SECRET_NOT_FOUND');
  });

  it('answers ERR_SECRET_NOT_FOUND for a prefix that turns the name into a DAPR_ variable', async () => {
    const store = await createEnvSecretStore(...storeFactoryArgs('secretstores.local.env', { prefix: 'DAPR_' }, { env: ENV }));
    expect(await rejectionCode(store.get('API_TOKEN'))).toBe('ERR_SECRET_NOT_FOUND');
    expect(await store.bulkGet()).toEqual({});
  });

  it('lists only prefixed variables in bulk, named without the prefix', async () => {
    const store = await envStore('MYAPP_');
    expect(await store.bulkGet()).toEqual({
      DB_PASSWORD: { DB_PASSWORD: 'db-pw' },
      EMPTY: { EMPTY: '' },
      DAPR_X: { DAPR_X: 'not-reserved-after-prefix' },
    });
  });

  it('never lists DAPR_* or APP_API_TOKEN in bulk without a prefix', async () => {
    const all = await (await envStore()).bulkGet();
    expect(Object.keys(all).sort()).toEqual(['MYAPP_DAPR_X', 'MYAPP_DB_PASSWORD', 'MYAPP_EMPTY', 'OTHER_VAR']);
  });
});
