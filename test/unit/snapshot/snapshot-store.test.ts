import { chmod, chown, mkdir, mkdtemp, readdir, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isGvmiTestError } from '../../../src/errors.js';
import {
  describeSnapshot, discardSnapshot, findSnapshot, pruneSnapshots, snapshotKey, snapshotTemporaryPath, type SnapshotKeyInputs,
} from '../../../src/snapshot/snapshot-store.js';

const asRoot = process.getuid?.() === 0;

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
    await writeFile(join(dir, `${key}.state`), Buffer.alloc(mib * 1024 * 1024, 1), { mode: 0o600 });
    await writeFile(join(dir, `${key}.json`), '{}', { mode: 0o600 });
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

  /** The error findSnapshot fails with, or undefined. */
  const refusal = (key = 'k'): Promise<unknown> => findSnapshot(key).then(() => undefined, (e: unknown) => e);

  describe('trust: a state is handed to QEMU, so nothing another local user could plant is used', () => {
    it.runIf(asRoot)('refuses a directory owned by another user, saying how to fix it', async () => {
      await state('k', 1, 0);
      await chown(dir, 1234, 1234);
      const error = await refusal();
      expect(isGvmiTestError(error, 'setup.unsafe-snapshot-dir')).toBe(true);
      expect((error as Error).message).toContain('owned by uid 1234');
      expect((error as { hint: string }).hint).toContain(`chown 0 ${dir}`);
    });

    it('refuses a directory writable by others (0777), and one whose parent is', async () => {
      await state('k', 1, 0);
      await chmod(dir, 0o777);
      const error = await refusal();
      expect(isGvmiTestError(error, 'setup.unsafe-snapshot-dir')).toBe(true);
      expect((error as { hint: string }).hint).toContain(`chmod go-w ${dir}`);
      // Ours and closed, but inside an open, non-sticky directory: anyone could rename it away.
      await chmod(dir, 0o700);
      const inner = join(dir, 'inner');
      await mkdir(inner, { mode: 0o700 });
      process.env['GVMI_TEST_SNAPSHOT_DIR'] = inner;
      await chmod(dir, 0o777);
      expect(isGvmiTestError(await refusal(), 'setup.unsafe-snapshot-dir')).toBe(true);
      // Nor is one created there for a save.
      await expect(snapshotTemporaryPath('k')).rejects.toThrow(/refusing snapshot directory/);
    });

    it('refuses the default directory (in the cache) as well when it is open to others', async () => {
      delete process.env['GVMI_TEST_SNAPSHOT_DIR'];
      await mkdir(join(cache, 'snapshots'), { mode: 0o700 });
      await chmod(join(cache, 'snapshots'), 0o777);
      expect(isGvmiTestError(await refusal(), 'setup.unsafe-snapshot-dir')).toBe(true);
    });

    it.runIf(asRoot)('does not restore a state owned by another user, group-writable, or a symlink; warns once each', async () => {
      const warn = vi.fn();
      const logger = { warn } as unknown as Logger;
      await state('foreign', 1, 0);
      await chown(join(dir, 'foreign.state'), 1234, 1234);
      await state('open', 1, 0);
      await chmod(join(dir, 'open.state'), 0o620);
      await state('ours', 1, 0);
      await symlink(join(dir, 'ours.state'), join(dir, 'linked.state'));
      for (const key of ['foreign', 'open', 'linked']) expect([key, await findSnapshot(key, logger)]).toEqual([key, undefined]);
      expect(warn).toHaveBeenCalledTimes(3);
      expect(warn.mock.calls.map((c) => c[1] as string)).toEqual([
        expect.stringContaining('owned by uid 1234'),
        expect.stringContaining('writable by group or others (mode 0620)'),
        expect.stringContaining('not a regular file'),
      ]);
      expect((await findSnapshot('ours', logger))?.path).toBe(join(dir, 'ours.state'));
      expect(warn).toHaveBeenCalledTimes(3);
    });

    it('creates its directory 0700 and its notes 0600', async () => {
      const fresh = join(dir, 'fresh');
      process.env['GVMI_TEST_SNAPSHOT_DIR'] = fresh;
      await snapshotTemporaryPath('k');
      expect((await stat(fresh)).mode & 0o777).toBe(0o700);
      await describeSnapshot('k', { image: 'x' });
      expect((await stat(join(fresh, 'k.json'))).mode & 0o777).toBe(0o600);
    });

    it('prunes nothing in a directory it does not trust', async () => {
      await state('a', 2, 100);
      await chmod(dir, 0o777);
      expect(await pruneSnapshots(0)).toEqual([]);
      expect((await readdir(dir)).sort()).toEqual(['a.json', 'a.state']);
    });
  });
});
