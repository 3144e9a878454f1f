import { afterEach, describe, expect, it } from 'vitest';
import { budgetBytesFromEnv, entriesOverBudget } from '../../src/lru-budget.js';

const entry = (key: string, mib: number) => ({ key, bytes: mib * 1024 * 1024, lastUsed: new Date() });

describe('entriesOverBudget', () => {
  it('keeps the newest entries that fit and evicts the rest', () => {
    const newestFirst = [entry('a', 4), entry('b', 4), entry('c', 4)];
    expect(entriesOverBudget(newestFirst, 9 * 1024 * 1024).map((e) => e.key)).toEqual(['c']);
    expect(entriesOverBudget(newestFirst, 3 * 1024 * 1024).map((e) => e.key)).toEqual(['a', 'b', 'c']);
  });
  it('never evicts the entry to keep, even alone over the budget', () => {
    expect(entriesOverBudget([entry('a', 4), entry('b', 4)], 0, 'a').map((e) => e.key)).toEqual(['b']);
  });
});

describe('budgetBytesFromEnv', () => {
  afterEach(() => { delete process.env['GVMI_TEST_LRU_TEST_MIB']; });
  it('reads MiB, and falls back to the default for nonsense', () => {
    expect(budgetBytesFromEnv('GVMI_TEST_LRU_TEST_MIB', 7)).toBe(7 * 1024 * 1024);
    process.env['GVMI_TEST_LRU_TEST_MIB'] = '2';
    expect(budgetBytesFromEnv('GVMI_TEST_LRU_TEST_MIB', 7)).toBe(2 * 1024 * 1024);
    process.env['GVMI_TEST_LRU_TEST_MIB'] = '-1';
    expect(budgetBytesFromEnv('GVMI_TEST_LRU_TEST_MIB', 7)).toBe(7 * 1024 * 1024);
    process.env['GVMI_TEST_LRU_TEST_MIB'] = 'lots';
    expect(budgetBytesFromEnv('GVMI_TEST_LRU_TEST_MIB', 7)).toBe(7 * 1024 * 1024);
  });
});
