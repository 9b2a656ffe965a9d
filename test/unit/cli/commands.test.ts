import { describe, expect, it } from '@jest/globals';
import { COMMANDS } from '../../../src/cli/commands.js';
import type { LazyCliCommand } from '../../../src/cli/lazy-command.js';

describe('the command list', () => {
  const lazy = COMMANDS.filter((c): c is LazyCliCommand => 'load' in c);

  it('loads every command but serve on first use', () => {
    const lazyNames = [
      'init',
      'status',
      'rotate prepare',
      'rotate activate',
      'rotate retire',
      'rotate status',
      'request',
      'secrets resolve',
      'secrets serve',
    ];
    expect(COMMANDS.map((c) => c.name)).toEqual(['serve', ...lazyNames]);
    expect(lazy.map((c) => c.name)).toEqual(lazyNames);
  });

  it.each(lazy.map((c) => [c.name, c] as const))(
    'lists "%s" with the name and summary of the command it loads',
    async (_name, command) => {
      const loaded = await command.load();
      expect({ name: loaded.name, summary: loaded.summary }).toEqual({
        name: command.name,
        summary: command.summary,
      });
    },
  );
});
