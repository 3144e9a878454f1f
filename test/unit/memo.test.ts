import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoPath, readMemo, writeMemo } from '../../src/memo.js';

describe('memos', () => {
  let cache: string;
  const saved = process.env['GVMI_TEST_CACHE'];
  beforeEach(async () => {
    cache = await mkdtemp(join(tmpdir(), 'gvmi-memo-'));
    process.env['GVMI_TEST_CACHE'] = cache;
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env['GVMI_TEST_CACHE'];
    else process.env['GVMI_TEST_CACHE'] = saved;
    await rm(cache, { recursive: true, force: true });
  });

  it('are kept per kind and key, and read back whole', async () => {
    const a = memoPath('digests', ['/img', 1, 2]);
    expect(a.startsWith(join(cache, 'digests'))).toBe(true);
    expect(memoPath('digests', ['/img', 1, 3])).not.toBe(a);
    expect(await readMemo(a)).toBeUndefined();
    await writeMemo(a, 'answer');
    expect(await readMemo(a)).toBe('answer');
    expect(await readdir(join(cache, 'digests'))).toHaveLength(1); // no temporary left
  });

  it('never fail the caller when the cache cannot be written', async () => {
    // The cache "directory" is a file: mkdir fails with ENOTDIR (root ignores permissions).
    await rm(cache, { recursive: true });
    await writeFile(cache, '');
    const memo = memoPath('shadowed', ['x']);
    await expect(writeMemo(memo, '[]')).resolves.toBeUndefined();
    expect(await readMemo(memo)).toBeUndefined();
    await chmod(cache, 0o600);
  });
});
