import { mkdir, mkdtemp, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { discardSnapshot, findSnapshot, pruneSnapshots, snapshotKey, type SnapshotKeyInputs } from '../../../src/vm/snapshot-store.js';

const base: SnapshotKeyInputs = {
  imageDigest: 'a'.repeat(64),
  kernelHash: 'k1',
  initHash: 'i1',
  qemuIdentity: '/usr/bin/qemu-system-x86_64:123:456',
  args: ['-m', '512M', '-smp', '1', '-append', 'console=ttyS0 hostname=golem'],
};

describe('snapshotKey', () => {
  it('is stable for equal inputs and changes with every one of them', () => {
    expect(snapshotKey(base)).toBe(snapshotKey({ ...base, args: [...base.args] }));
    const variants: SnapshotKeyInputs[] = [
      { ...base, imageDigest: 'b'.repeat(64) },
      { ...base, kernelHash: 'k2' },
      { ...base, initHash: 'i2' },
      { ...base, qemuIdentity: '/usr/bin/qemu-system-x86_64:124:456' },
      { ...base, hostCpu: 'GenuineIntel Xeon fpu vme avx2 6.1.0' },
      { ...base, args: ['-m', '1024M', '-smp', '1', '-append', 'console=ttyS0 hostname=golem'] },
      { ...base, args: ['-m', '512M', '-smp', '1', '-append', 'console=ttyS0 hostname=other'] },
    ];
    const keys = new Set([snapshotKey(base), ...variants.map(snapshotKey)]);
    expect(keys.size).toBe(variants.length + 1);
  });
});

describe('the snapshot directory', () => {
  let dir: string;
  let cache: string;
  const saved = { dir: process.env['GVMI_TEST_SNAPSHOT_DIR'], cache: process.env['GVMI_TEST_CACHE'] };
  const restore = (name: string, value: string | undefined): void => {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gvmi-snapshots-unit-'));
    // Pruning also drops old memos from the cache: never the user's real one.
    cache = await mkdtemp(join(tmpdir(), 'gvmi-cache-unit-'));
    process.env['GVMI_TEST_SNAPSHOT_DIR'] = dir;
    process.env['GVMI_TEST_CACHE'] = cache;
  });
  afterEach(async () => {
    restore('GVMI_TEST_SNAPSHOT_DIR', saved.dir);
    restore('GVMI_TEST_CACHE', saved.cache);
    await rm(dir, { recursive: true, force: true });
    await rm(cache, { recursive: true, force: true });
  });

  async function state(key: string, mib: number, ageSeconds: number): Promise<void> {
    await writeFile(join(dir, `${key}.state`), Buffer.alloc(mib * 1024 * 1024, 1));
    await writeFile(join(dir, `${key}.json`), '{}');
    const when = new Date(Date.now() - ageSeconds * 1000);
    await utimes(join(dir, `${key}.state`), when, when);
  }

  it('finds saved states, not empty or missing ones', async () => {
    await state('full', 1, 0);
    await writeFile(join(dir, 'empty.state'), '');
    expect((await findSnapshot('full'))?.path).toBe(join(dir, 'full.state'));
    expect(await findSnapshot('empty')).toBeUndefined();
    expect(await findSnapshot('missing')).toBeUndefined();
  });

  it('prunes the least recently used states past the budget; a restore counts as a use', async () => {
    await state('old', 2, 300);
    await state('middle', 2, 200);
    await state('new', 2, 100);
    await findSnapshot('old'); // used just now: now the most recent
    expect(await pruneSnapshots(5 * 1024 * 1024)).toEqual(['middle']);
    expect((await readdir(dir)).sort()).toEqual(['new.json', 'new.state', 'old.json', 'old.state']);
  });

  it('never prunes the state just saved, even over budget', async () => {
    await state('older', 2, 100);
    await state('just-saved', 3, 0);
    expect(await pruneSnapshots(1024 * 1024, 'just-saved')).toEqual(['older']);
    expect(await findSnapshot('just-saved')).toBeDefined();
  });

  it('discards only the file it was told about: a state renamed over the path meanwhile stays', async () => {
    await state('k', 1, 0);
    const seen = (await findSnapshot('k'))!;
    // Another process saves a new state meanwhile: written aside, renamed over (a new inode).
    await writeFile(join(dir, 'k.state.new'), 'x');
    await rename(join(dir, 'k.state.new'), join(dir, 'k.state'));
    await discardSnapshot('k', seen);
    expect(await readdir(dir)).toContain('k.state');
    await discardSnapshot('k', (await findSnapshot('k'))!);
    expect(await readdir(dir)).toEqual([]);
  });

  it('drops old memos from the cache, keeps fresh ones', async () => {
    for (const sub of ['digests', 'shadowed', 'qemu-probes']) {
      await mkdir(join(cache, sub));
      await writeFile(join(cache, sub, 'old'), 'x');
      const longAgo = new Date(Date.now() - 40 * 24 * 3600 * 1000);
      await utimes(join(cache, sub, 'old'), longAgo, longAgo);
      await writeFile(join(cache, sub, 'fresh'), 'x');
    }
    await pruneSnapshots();
    expect(await readdir(join(cache, 'digests'))).toEqual(['fresh']);
    expect(await readdir(join(cache, 'shadowed'))).toEqual(['fresh']);
    expect(await readdir(join(cache, 'qemu-probes'))).toEqual(['fresh']);
  });

  it('removes temporary files a killed save left behind, but not one being written', async () => {
    await writeFile(join(dir, '.k.1.stale.tmp'), 'x');
    const hourAgo = new Date(Date.now() - 2 * 3600 * 1000);
    await utimes(join(dir, '.k.1.stale.tmp'), hourAgo, hourAgo);
    await writeFile(join(dir, '.k.2.fresh.tmp'), 'x');
    await pruneSnapshots();
    expect(await readdir(dir)).toEqual(['.k.2.fresh.tmp']);
  });
});
