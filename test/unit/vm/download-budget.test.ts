/**
 * A download's budget (bytes, entries, depth) is enforced while the volume is walked, not after
 * the copy: a guest can leave a tree or a file that would fill the host's disk.
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_DOWNLOAD_LIMITS, downloadFromVolume } from '../../../src/vm/transfer.js';
import type { VolumeMount } from '../../../src/vm/volumes.js';

let base: string;
let mounts: VolumeMount[];

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'gvmi-budget-'));
  await mkdir(join(base, 'out'));
  await mkdir(join(base, 'dest'));
  mounts = [{ guestPath: '/golem/output', hostPath: join(base, 'out'), tag: 'mnt0', temporary: true }];
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('download budget', () => {
  it('a file past maxBytes fails with transfer.too-large and its partial copy is removed', async () => {
    await writeFile(join(base, 'out/big'), Buffer.alloc(3 << 20, 1));
    const target = join(base, 'dest/big');
    await expect(downloadFromVolume(mounts, '/golem/output/big', target, { limits: { maxBytes: 1 << 20 } })).rejects.toMatchObject({ code: 'transfer.too-large' });
    await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('the byte budget is for the whole tree, not each file', async () => {
    for (let i = 0; i < 4; i++) await writeFile(join(base, `out/f${i}`), Buffer.alloc(1 << 19, 1));
    await expect(downloadFromVolume(mounts, '/golem/output', join(base, 'dest/t'), { limits: { maxBytes: 3 << 19 } })).rejects.toMatchObject({ code: 'transfer.too-large' });
    expect((await downloadFromVolume(mounts, '/golem/output', join(base, 'dest/u'), { limits: { maxBytes: 4 << 19 } })).files).toBe(4);
  });

  it('a sparse file counts its allocated blocks, and the copy stops past the budget', async () => {
    const { open } = await import('node:fs/promises');
    const handle = await open(join(base, 'out/sparse'), 'w');
    await handle.truncate(64 << 20);
    await handle.write(Buffer.alloc(4096, 1), 0, 4096, 1 << 20);
    await handle.close();
    const got = await downloadFromVolume(mounts, '/golem/output/sparse', join(base, 'dest/s'), { limits: { maxBytes: 1 << 20 } });
    expect(got.files).toBe(1);
    expect((await stat(join(base, 'dest/s'))).size).toBe(64 << 20);
  });

  it('more entries than maxEntries fail with transfer.too-large', async () => {
    for (let i = 0; i < 20; i++) await writeFile(join(base, `out/e${i}`), 'x');
    await expect(downloadFromVolume(mounts, '/golem/output', join(base, 'dest/t'), { limits: { maxEntries: 10 } })).rejects.toMatchObject({ code: 'transfer.too-large' });
    expect((await readdir(join(base, 'dest/t'))).length).toBeLessThanOrEqual(10);
    expect((await downloadFromVolume(mounts, '/golem/output', join(base, 'dest/u'), { limits: { maxEntries: 20 } })).files).toBe(20);
  });

  it('a tree deeper than maxDepth fails with transfer.too-large', async () => {
    let dir = join(base, 'out');
    for (let i = 0; i < 8; i++) {
      dir = join(dir, 'd');
      await mkdir(dir);
    }
    await writeFile(join(dir, 'f'), 'deep');
    await expect(downloadFromVolume(mounts, '/golem/output', join(base, 'dest/t'), { limits: { maxDepth: 5 } })).rejects.toMatchObject({ code: 'transfer.too-large' });
    expect((await downloadFromVolume(mounts, '/golem/output', join(base, 'dest/u'), { limits: { maxDepth: 8 } })).files).toBe(1);
  });

  it('defaults are generous but finite', () => {
    expect(DEFAULT_DOWNLOAD_LIMITS).toEqual({ maxBytes: 8 * 1024 ** 3, maxEntries: 1_000_000, maxDepth: 256 });
  });
});
