/**
 * planVolumes with an owner (gvmi-test as root, QEMU as an unprivileged user): volume directories
 * are handed to that user for the VM's lifetime and given back at cleanup. Needs root (chown).
 */
import { chmod, chown, lchown, lstat, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { planVolumes } from '../../../src/vm/volumes.js';

const asRoot = process.getuid?.() === 0;
const QEMU = { uid: 65534, gid: 65534 };
const CALLER = { uid: 1234, gid: 1235 };

describe.runIf(asRoot)('volume directories handed to QEMU\'s user', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'gvmi-volumes-unit-'));
    await chmod(base, 0o711); // QEMU's user must reach the directories below
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  /** What the guest does: its files are created by QEMU's user. */
  async function asGuest(path: string, make: () => Promise<void>): Promise<void> {
    await make();
    await lchown(path, QEMU.uid, QEMU.gid);
  }
  const owner = async (path: string): Promise<[number, number]> => {
    const st = await lstat(path);
    return [st.uid, st.gid];
  };

  it('gives a bound directory and what the guest wrote in it back to its owner; others\' files and link targets stay', async () => {
    const bound = join(base, 'bound');
    await mkdir(bound, { mode: 0o750 });
    await chmod(bound, 0o750);
    await chown(bound, CALLER.uid, CALLER.gid);
    await writeFile(join(bound, 'callers-own'), 'x');
    await chown(join(bound, 'callers-own'), 4321, 4321);
    const outside = join(base, 'outside');
    await writeFile(outside, 'not in the volume');
    await chown(outside, QEMU.uid, QEMU.gid); // another process of QEMU's user owns it

    const planned = await planVolumes(['/golem/output'], { '/golem/output': bound }, QEMU);
    expect(await owner(bound)).toEqual([QEMU.uid, QEMU.gid]);

    // The guest writes files, a directory tree, a setuid program, a link out of the volume, and
    // opens the directory to everyone.
    await asGuest(join(bound, 'result.txt'), () => writeFile(join(bound, 'result.txt'), 'r'));
    await asGuest(join(bound, 'sub'), () => mkdir(join(bound, 'sub')));
    await asGuest(join(bound, 'sub', 'deep'), () => mkdir(join(bound, 'sub', 'deep')));
    await asGuest(join(bound, 'sub', 'deep', 'f'), () => writeFile(join(bound, 'sub', 'deep', 'f'), 'f'));
    await asGuest(join(bound, 'setuid'), () => writeFile(join(bound, 'setuid'), '#!/bin/sh\n'));
    await chmod(join(bound, 'setuid'), 0o4755);
    await asGuest(join(bound, 'link-out'), () => symlink(outside, join(bound, 'link-out')));
    await chmod(bound, 0o777);

    await planned.cleanup();

    expect(await owner(bound)).toEqual([CALLER.uid, CALLER.gid]);
    expect((await stat(bound)).mode & 0o7777).toBe(0o750);
    for (const made of ['result.txt', 'sub', 'sub/deep', 'sub/deep/f', 'setuid', 'link-out']) {
      expect([made, ...(await owner(join(bound, made)))]).toEqual([made, CALLER.uid, CALLER.gid]);
    }
    expect((await stat(join(bound, 'setuid'))).mode & 0o6000).toBe(0);
    expect(await owner(join(bound, 'callers-own'))).toEqual([4321, 4321]);
    expect(await owner(outside)).toEqual([QEMU.uid, QEMU.gid]); // the link was not followed
  });

  it('gives a bound directory back when planning fails half-way', async () => {
    const bound = join(base, 'bound');
    await mkdir(bound);
    await chown(bound, CALLER.uid, CALLER.gid);
    // The second binding is not reachable by QEMU's user: planning fails after the first was handed over.
    const closed = join(base, 'closed');
    await mkdir(closed, { mode: 0o700 });
    await chmod(closed, 0o700);
    await expect(planVolumes([], { '/a': bound, '/b': join(closed, 'inner') }, QEMU)).rejects.toThrow(/cannot reach/);
    expect(await owner(bound)).toEqual([CALLER.uid, CALLER.gid]);
  });

  it('records a directory bound twice once, before it is handed over', async () => {
    const bound = join(base, 'bound');
    await mkdir(bound);
    await chown(bound, CALLER.uid, CALLER.gid);
    const planned = await planVolumes([], { '/a': bound, '/b': bound }, QEMU);
    await planned.cleanup();
    expect(await owner(bound)).toEqual([CALLER.uid, CALLER.gid]);
  });

  it('removes temporaries, or gives kept ones back to us', async () => {
    const removed = await planVolumes(['/golem/work'], {}, QEMU);
    await removed.cleanup();
    await expect(stat(removed.mounts[0]!.hostPath)).rejects.toThrow();

    const kept = await planVolumes(['/golem/work'], {}, QEMU);
    const dir = kept.mounts[0]!.hostPath;
    expect(await owner(dir)).toEqual([QEMU.uid, QEMU.gid]);
    await asGuest(join(dir, 'out'), () => writeFile(join(dir, 'out'), 'o'));
    await kept.cleanup({ keepTemporaries: true });
    expect(await owner(dir)).toEqual([0, 0]);
    expect(await owner(join(dir, 'out'))).toEqual([0, 0]);
    await rm(dir, { recursive: true, force: true });
  });
});
