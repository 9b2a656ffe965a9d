import { describe, expect, it } from '@jest/globals';
import { findStoreCycles, formatCycle } from '../../../src/secrets/resolve/store-dependencies.js';

describe('secret store dependency cycles', () => {
  it.each([
    ['no dependencies', { a: undefined, b: undefined }, []],
    ['a chain', { a: 'b', b: 'c', c: undefined }, []],
    ['a reference to a store that is not declared', { a: 'zzz' }, []],
    ['a store that reads from itself', { a: 'a' }, [['a']]],
    ['two stores that read from each other', { b: 'a', a: 'b' }, [['a', 'b']]],
    ['a three-store cycle listed from its first name', { c: 'a', a: 'b', b: 'c' }, [['a', 'b', 'c']]],
    ['a chain leading into a cycle (only the cycle is reported)', { x: 'y', y: 'z', z: 'y' }, [['y', 'z']]],
    ['two separate cycles', { a: 'b', b: 'a', c: 'c', d: undefined }, [['a', 'b'], ['c']]],
  ])('finds the cycles in %s', (_what, graph, cycles) => {
    expect(findStoreCycles(new Map(Object.entries(graph)))).toEqual(cycles);
  });

  it('formats a cycle back to its start', () => {
    expect(formatCycle(['a', 'b'])).toBe('"a" → "b" → "a"');
  });
});
