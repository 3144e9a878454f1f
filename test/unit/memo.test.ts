import { chmod, chown, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

  it('are created 0600 in a directory created 0700', async () => {
    const memo = memoPath('digests', ['mode']);
    await writeMemo(memo, 'x');
    expect((await stat(memo)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(memo))).mode & 0o777).toBe(0o700);
  });

  // A memo picks the snapshot an image restores and whether QEMU runs under seccomp.
  it('written by someone else, or open to others, read as missing', async () => {
    const memo = memoPath('qemu-probes', ['planted']);
    await mkdir(dirname(memo), { recursive: true, mode: 0o700 });
    await writeFile(memo, 'no-sandbox', { mode: 0o620 });
    await chmod(memo, 0o620);
    expect(await readMemo(memo)).toBeUndefined();
    await chmod(memo, 0o600);
    expect(await readMemo(memo)).toBe('no-sandbox'); // the same file, closed: ours
    if (process.getuid?.() === 0) {
      await chown(memo, 1234, 1234);
      expect(await readMemo(memo)).toBeUndefined();
      await chown(memo, 0, 0);
    }
    await rm(memo);
    await writeFile(join(cache, 'elsewhere'), 'no-sandbox', { mode: 0o600 });
    await symlink(join(cache, 'elsewhere'), memo);
    expect(await readMemo(memo)).toBeUndefined();
  });

  it('in a directory open to others are neither read nor written', async () => {
    const memo = memoPath('digests', ['open-dir']);
    await writeMemo(memo, 'first');
    await chmod(dirname(memo), 0o777);
    expect(await readMemo(memo)).toBeUndefined();
    await writeMemo(memo, 'second');
    await chmod(dirname(memo), 0o700);
    expect(await readMemo(memo)).toBe('first');
  });
});
