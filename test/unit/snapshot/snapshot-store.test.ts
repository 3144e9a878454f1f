import { statSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isGvmiTestError } from '../../../src/errors.js';
import {
  describeSnapshot, discardSnapshot, findSnapshot, pruneSnapshots, saveSnapshotMemory, snapshotKey, snapshotMemoryPath, snapshotTemporaryPath, type SnapshotKeyInputs,
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

  /** A saved state: a small device state, `mib` MiB of RAM in its RAM file, a note. */
  async function state(key: string, mib: number, ageSeconds: number): Promise<void> {
    await writeFile(join(dir, `${key}.state`), 'devices', { mode: 0o600 });
    await writeFile(memoryOf(key), Buffer.alloc(mib * 1024 * 1024, 1), { mode: 0o600 });
    await writeFile(join(dir, `${key}.json`), '{}', { mode: 0o600 });
    const when = new Date(Date.now() - ageSeconds * 1000);
    await utimes(join(dir, `${key}.state`), when, when);
  }
  /** The RAM file of the state now at `<key>.state` (named after its inode). */
  const memoryOf = (key: string, path = join(dir, `${key}.state`)): string => snapshotMemoryPath(path, statSync(path).ino);
  /** The directory's names, RAM files as `<key>.<ram>`. */
  const names = async (): Promise<string[]> => (await readdir(dir)).map((n) => n.replace(/\.\d+\.ram$/, '.<ram>')).sort();

  it('finds saved states with their RAM file, not empty or missing ones, nor one without its RAM', async () => {
    await state('full', 1, 0);
    await writeFile(join(dir, 'empty.state'), '');
    expect(await findSnapshot('full')).toMatchObject({ path: join(dir, 'full.state'), memoryPath: memoryOf('full') });
    expect(await findSnapshot('empty')).toBeUndefined();
    expect(await findSnapshot('missing')).toBeUndefined();
    await state('no-ram', 1, 0);
    await rm(memoryOf('no-ram'));
    expect(await findSnapshot('no-ram')).toBeUndefined();
  });

  it('pairs a state only with the RAM file saved for it: a state renamed over the path has another', async () => {
    await state('k', 1, 0);
    const first = (await findSnapshot('k'))!;
    // A save that died after renaming its state but before... cannot happen (the RAM file is
    // renamed first); a racing save renames its own state over: that state's inode names its RAM.
    await writeFile(join(dir, 'k.state.new'), 'other devices', { mode: 0o600 });
    await rename(join(dir, 'k.state.new'), join(dir, 'k.state'));
    expect(await findSnapshot('k')).toBeUndefined(); // its RAM file was never written
    await writeFile(memoryOf('k'), 'other ram', { mode: 0o600 });
    const second = (await findSnapshot('k'))!;
    expect(second.memoryPath).not.toBe(first.memoryPath);
  });

  it('prunes the least recently used states past the budget; a restore counts as a use', async () => {
    await state('old', 2, 300);
    await state('middle', 2, 200);
    await state('new', 2, 100);
    await findSnapshot('old'); // used just now: now the most recent
    expect(await pruneSnapshots(5 * 1024 * 1024)).toEqual(['middle']);
    expect(await names()).toEqual(['new.<ram>', 'new.json', 'new.state', 'old.<ram>', 'old.json', 'old.state']);
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
    await writeFile(memoryOf('k'), 'ram', { mode: 0o600 });
    await discardSnapshot('k', seen);
    expect(await names()).toEqual(['k.<ram>', 'k.<ram>', 'k.json', 'k.state']);
    await discardSnapshot('k', (await findSnapshot('k'))!);
    // Its RAM file went with it; the first state's is left to pruning (old enough: not in use).
    expect(await readdir(dir)).toEqual([basename(seen.memoryPath)]);
    const hourAgo = new Date(Date.now() - 2 * 3600 * 1000);
    await utimes(seen.memoryPath, hourAgo, hourAgo);
    await pruneSnapshots();
    expect(await readdir(dir)).toEqual([]);
  });

  it('keeps the RAM file of a replaced state while a VM being restored may still open it', async () => {
    await state('k', 1, 0);
    const seen = (await findSnapshot('k'))!;
    await writeFile(join(dir, 'k.state.new'), 'x', { mode: 0o600 });
    await rename(join(dir, 'k.state.new'), join(dir, 'k.state'));
    await writeFile(memoryOf('k'), 'ram', { mode: 0o600 });
    await pruneSnapshots();
    expect(await readdir(dir)).toContain(basename(seen.memoryPath));
  });

  it('copies the RAM file of a paused VM as the RAM of the state being saved: its written parts only, 0600', async () => {
    const shared = join(dir, 'shared-ram');
    // 64 MiB long, 1 MiB written in the middle: what a guest's RAM file looks like.
    await writeFile(shared, '');
    await truncate(shared, 64 * 1024 * 1024);
    const fh = await open(shared, 'r+');
    await fh.write(Buffer.alloc(1024 * 1024, 7), 0, 1024 * 1024, 32 * 1024 * 1024);
    await fh.close();
    const temporary = await snapshotTemporaryPath('k');
    await writeFile(temporary, 'devices', { mode: 0o600 });
    const final = join(dir, 'k.state');
    const { bytes, discard } = await saveSnapshotMemory(shared, temporary, final);
    const target = snapshotMemoryPath(final, statSync(temporary).ino);
    const st = await stat(target);
    expect(st.size).toBe(64 * 1024 * 1024);
    expect(bytes).toBeLessThan(4 * 1024 * 1024);
    expect(bytes).toBe(Math.min(st.size, st.blocks * 512));
    expect(st.mode & 0o777).toBe(0o600);
    expect((await readFile(target)).equals(await readFile(shared))).toBe(true);
    // Renamed into place: the state follows, and the pair is found.
    await rename(temporary, final);
    expect((await findSnapshot('k'))?.memoryPath).toBe(target);
    // A save that fails after the copy takes it back.
    await discard();
    await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
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
      // The RAM file is handed to QEMU too: the same rules.
      await state('foreign-ram', 1, 0);
      await chown(memoryOf('foreign-ram'), 1234, 1234);
      await state('open-ram', 1, 0);
      await chmod(memoryOf('open-ram'), 0o666);
      const keys = ['foreign', 'open', 'linked', 'foreign-ram', 'open-ram'];
      for (const key of keys) expect([key, await findSnapshot(key, logger)]).toEqual([key, undefined]);
      expect(warn).toHaveBeenCalledTimes(5);
      expect(warn.mock.calls.map((c) => c[1] as string)).toEqual([
        expect.stringContaining('owned by uid 1234'),
        expect.stringContaining('writable by group or others (mode 0620)'),
        expect.stringContaining('not a regular file'),
        expect.stringMatching(/\.ram is owned by uid 1234/),
        expect.stringMatching(/\.ram is writable by group or others \(mode 0666\)/),
      ]);
      expect((await findSnapshot('ours', logger))?.path).toBe(join(dir, 'ours.state'));
      expect(warn).toHaveBeenCalledTimes(5);
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
      expect(await names()).toEqual(['a.<ram>', 'a.json', 'a.state']);
    });
  });
});
