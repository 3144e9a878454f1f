/**
 * README's exit-status table is a promise to scripts: every error code's status, as the CLI
 * computes it (exitCodeFor), must be the one the table gives it.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../../src/cli/exit-codes.js';
import { ERROR_CODES, type ErrorCode } from '../../../src/errors.js';

interface Row { status: number; exact: string[]; families: string[]; unknown: string[] }

/** The table's rows with a single status, and the codes (`vm.boot-timeout`) and families (`vm.*`) each names. */
function readmeTable(): Row[] {
  const readme = readFileSync(resolve('README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('| exit status | meaning |'));
  const rows: Row[] = [];
  for (const line of table.split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const [, status, meaning] = line.split('|').map((cell) => cell.trim());
    if (!/^\d+$/.test(status!)) continue; // 0–255, 128+N: not a gvmi-test error
    const words = [...meaning!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    rows.push({
      status: Number(status),
      // Backquoted words that are codes; command names (`run`, `exec`) are not.
      exact: words.filter((w) => (ERROR_CODES as readonly string[]).includes(w)),
      families: words.filter((w) => /^[a-z]+\.\*$/.test(w)).map((w) => w.slice(0, -1)),
      unknown: words.filter((w) => /^[a-z]+\.[a-z-]+$/.test(w) && !(ERROR_CODES as readonly string[]).includes(w)),
    });
  }
  return rows;
}

/** The row that gives `code` its status: the one naming it, else the one naming its family. */
function rowsFor(code: ErrorCode, rows: Row[]): Row[] {
  const exact = rows.filter((r) => r.exact.includes(code));
  return exact.length > 0 ? exact : rows.filter((r) => r.families.some((f) => code.startsWith(f)));
}

describe("README's exit-status table", () => {
  const rows = readmeTable();

  it('is found, with a row for each of gvmi-test\'s own statuses', () => {
    expect(rows.map((r) => r.status)).toEqual(expect.arrayContaining([1, 2, 65, 69, 70, 73, 74, 75, 124]));
  });

  it.each([...ERROR_CODES])('%s: exactly one row, with the status the CLI exits with', (code) => {
    const matching = rowsFor(code, rows);
    expect(matching.map((r) => r.status), `rows naming ${code} or its family`).toHaveLength(1);
    expect(exitCodeFor(code)).toBe(matching[0]!.status);
  });

  it('names no code or family that does not exist', () => {
    expect(rows.flatMap((r) => r.unknown)).toEqual([]);
    for (const family of rows.flatMap((r) => r.families)) {
      expect(ERROR_CODES.some((c) => c.startsWith(family)), `${family}*`).toBe(true);
    }
  });
});
