/**
 * Attacks on host-side transfers by whoever controls a volume's content (the guest): links left
 * in the destination, and entries swapped for links while the host copies. The swapper here is a
 * separate process renaming entries as fast as it can, so it races every step of every transfer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadFromVolume, emptyVolume, uploadToVolume } from '../../../src/vm/transfer.js';
import { planVolumes, type VolumeMount } from '../../../src/vm/volumes.js';

const SECRET = 'host-secret-7f3a';
const ATTEMPTS = 300;

let base: string;
let outside: string;
let mounts: VolumeMount[];
let swapper: ChildProcess | undefined;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'gvmi-attack-'));
  outside = join(base, 'outside');
  for (const d of ['in', 'out', 'outside', 'dest']) await mkdir(join(base, d));
  await writeFile(join(outside, 'f'), SECRET);
  await chmod(join(outside, 'f'), 0o600);
  mounts = [
    { guestPath: '/golem/input', hostPath: join(base, 'in'), tag: 'mnt0', temporary: true },
    { guestPath: '/golem/output', hostPath: join(base, 'out'), tag: 'mnt1', temporary: true },
  ];
});

afterEach(async () => {
  swapper?.kill('SIGKILL');
  swapper = undefined;
  await rm(base, { recursive: true, force: true });
});

/**
 * Swaps `dir/name` between a guest's own entry (a file, or a directory holding `f`) and a
 * symlink to `outside` (or `outside/f`), with atomic renames, until killed.
 */
async function startSwapper(dir: string, name: string, kind: 'file' | 'dir'): Promise<void> {
  const script = `
    const fs = require('node:fs');
    const [dir, name, kind, outside] = process.argv.slice(1);
    process.chdir(dir);
    const real = kind === 'file' ? () => fs.writeFileSync('.real', 'guest') : () => { fs.mkdirSync('.real'); fs.writeFileSync('.real/f', 'guest'); };
    const link = () => fs.symlinkSync(kind === 'file' ? outside + '/f' : outside, '.link');
    process.stdout.write('go\\n');
    for (;;) {
      try { real(); fs.renameSync('.real', name); } catch {}
      try { fs.rmSync('.real', { recursive: true, force: true }); } catch {}
      try { link(); fs.rmSync(name, { recursive: true, force: true }); fs.renameSync('.link', name); } catch {}
      try { fs.rmSync('.link', { force: true }); } catch {}
    }
  `;
  const child = spawn(process.execPath, ['-e', script, dir, name, kind, outside], { stdio: ['ignore', 'pipe', 'inherit'] });
  swapper = child;
  await new Promise<void>((r) => child.stdout!.once('data', () => r()));
}

/** Every regular file below `dir` (not through links). */
async function regularFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    if (st?.isDirectory()) found.push(...(await regularFiles(path)));
    else if (st?.isFile()) found.push(path);
  }
  return found;
}

describe('links already in the destination', () => {
  it('a download under --output never writes through a link an earlier download left', async () => {
    // Run 1 brought back golem/output as a link to outside (nested volumes: the guest unmounted one).
    const out = join(base, 'dest');
    await mkdir(join(out, 'golem'), { recursive: true });
    await symlink(outside, join(out, 'golem/output'));
    await writeFile(join(base, 'out/f'), 'guest');
    await downloadFromVolume(mounts, '/golem/output', join(out, 'golem/output'), { root: out });
    expect(await readFile(join(outside, 'f'), 'utf8')).toBe(SECRET);
    expect((await lstat(join(out, 'golem/output'))).isDirectory()).toBe(true);
    expect(await readFile(join(out, 'golem/output/f'), 'utf8')).toBe('guest');
  });

  it('a link in the middle of the destination path is replaced, not followed', async () => {
    const out = join(base, 'dest');
    await symlink(outside, join(out, 'golem'));
    await writeFile(join(base, 'out/pwned'), 'guest');
    await downloadFromVolume(mounts, '/golem/output', join(out, 'golem/output'), { root: out });
    expect(await readdir(outside)).toEqual(['f']);
    expect(await readFile(join(out, 'golem/output/pwned'), 'utf8')).toBe('guest');
  });

  it('inside a downloaded tree, an existing link at a directory name is replaced', async () => {
    const out = join(base, 'dest');
    await mkdir(join(out, 'tree'));
    await symlink(outside, join(out, 'tree/sub'));
    await mkdir(join(base, 'out/sub'));
    await writeFile(join(base, 'out/sub/f'), 'guest');
    await downloadFromVolume(mounts, '/golem/output', join(out, 'tree'));
    expect(await readFile(join(outside, 'f'), 'utf8')).toBe(SECRET);
    expect(await readFile(join(out, 'tree/sub/f'), 'utf8')).toBe('guest');
  });

  it('a destination outside the given root is refused', async () => {
    await expect(downloadFromVolume(mounts, '/golem/output', join(base, 'elsewhere'), { root: join(base, 'dest') })).rejects.toMatchObject({ code: 'transfer.escape' });
  });
});

describe('uploads never follow a host symlink', () => {
  it('a link given as the source is refused (it may have come back from a guest)', async () => {
    await symlink(join(outside, 'f'), join(base, 'result'));
    await expect(uploadToVolume(mounts, join(base, 'result'), '/golem/input/result')).rejects.toMatchObject({ code: 'transfer.failed' });
    expect(await readdir(join(base, 'in'))).toEqual([]);
  });

  it('a link inside an uploaded directory travels as a link', async () => {
    await mkdir(join(base, 'job'));
    await symlink(join(outside, 'f'), join(base, 'job/secret'));
    await uploadToVolume(mounts, join(base, 'job'), '/golem/input/job');
    expect(await readlink(join(base, 'in/job/secret'))).toBe(join(outside, 'f'));
  });
});

describe(`entries swapped for links during a transfer (${ATTEMPTS} attempts each, zero escapes)`, () => {
  it('download of a file swapped with a link to a root-only host file', async () => {
    await startSwapper(join(base, 'out'), 'result', 'file');
    let escapes = 0;
    let copied = 0;
    for (let i = 0; i < ATTEMPTS; i++) {
      const target = join(base, 'dest', `r${i}`);
      await downloadFromVolume(mounts, '/golem/output/result', target).catch(() => undefined);
      const st = await lstat(target).catch(() => undefined);
      if (st?.isFile()) {
        copied++;
        if ((await readFile(target, 'utf8')) !== 'guest') escapes++;
      }
    }
    expect(escapes).toBe(0);
    expect(copied).toBeGreaterThan(0); // the race was real: some attempts did copy the guest's file
  });

  it('download of a volume whose directory is swapped with a link to a host directory', async () => {
    await startSwapper(join(base, 'out'), 'd', 'dir');
    let escapes = 0;
    for (let i = 0; i < ATTEMPTS; i++) {
      const target = join(base, 'dest', `v${i}`);
      await downloadFromVolume(mounts, '/golem/output', target).catch(() => undefined);
      for (const file of await regularFiles(target)) if ((await readFile(file, 'utf8')) === SECRET) escapes++;
    }
    expect(escapes).toBe(0);
  });

  it('upload into a directory swapped with a link to a host directory', async () => {
    await writeFile(join(base, 'payload'), 'from-host');
    await startSwapper(join(base, 'in'), 'd', 'dir');
    for (let i = 0; i < ATTEMPTS; i++) await uploadToVolume(mounts, join(base, 'payload'), `/golem/input/d/p${i}`).catch(() => undefined);
    expect(await readdir(outside)).toEqual(['f']);
  });

  it('emptying a volume (reset) while a directory is swapped with a link to a host directory', async () => {
    await startSwapper(join(base, 'out'), 'd', 'dir');
    for (let i = 0; i < ATTEMPTS; i++) await emptyVolume(mounts[1]!).catch(() => undefined);
    expect(await readFile(join(outside, 'f'), 'utf8')).toBe(SECRET);
  });
});

describe('a volume directory replaced after it was planned (found by review)', () => {
  it('a volume root swapped for a link to a host directory is refused by every host operation', async () => {
    const [, out] = mounts;
    const { dev, ino } = await stat(out!.hostPath);
    const pinned: VolumeMount = { ...out!, identity: { dev, ino } };
    await writeFile(join(base, 'payload'), 'from-host');
    // What a guest could do through an outer volume, or a local user owning the parent: replace it.
    await rename(out!.hostPath, join(base, 'out-moved'));
    await symlink(outside, out!.hostPath);
    await expect(downloadFromVolume([pinned], '/golem/output', join(base, 'dest', 'got'))).rejects.toMatchObject({ code: 'transfer.escape' });
    await expect(uploadToVolume([pinned], join(base, 'payload'), '/golem/output/p')).rejects.toMatchObject({ code: 'transfer.escape' });
    await expect(emptyVolume(pinned)).rejects.toMatchObject({ code: 'transfer.escape' });
    expect(await readdir(outside)).toEqual(['f']);
    expect(await readdir(join(base, 'dest'))).toEqual([]);
    // Replaced by another directory (not a link): refused too.
    await rm(out!.hostPath);
    await mkdir(out!.hostPath);
    await expect(uploadToVolume([pinned], join(base, 'payload'), '/golem/output/p')).rejects.toMatchObject({ code: 'transfer.escape' });
  });

  it('bound host directories that nest are refused before anything is handed over', async () => {
    await mkdir(join(base, 'work/logs'), { recursive: true });
    await expect(planVolumes([], { '/a': join(base, 'work'), '/b': join(base, 'work/logs') })).rejects.toMatchObject({ code: 'usage' });
  });
});

describe('hard links planted at a destination (found by review)', () => {
  it('an upload never writes through a hard link the guest left at the destination name', async () => {
    // The guest (as QEMU's user) links a host file that user may write to the name the host will upload to.
    await link(join(outside, 'f'), join(base, 'in/result'));
    await writeFile(join(base, 'payload'), 'from-host');
    await uploadToVolume(mounts, join(base, 'payload'), '/golem/input/result');
    expect(await readFile(join(outside, 'f'), 'utf8')).toBe(SECRET);
    expect((await stat(join(outside, 'f'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(base, 'in/result'), 'utf8')).toBe('from-host');
    expect((await stat(join(base, 'in/result'))).nlink).toBe(1);
  });

  it('a hard link inside an uploaded directory tree at the destination is replaced, not written through', async () => {
    await mkdir(join(base, 'job'));
    await writeFile(join(base, 'job/a'), 'from-host');
    await mkdir(join(base, 'in/job'));
    await link(join(outside, 'f'), join(base, 'in/job/a'));
    await uploadToVolume(mounts, join(base, 'job'), '/golem/input/job');
    expect(await readFile(join(outside, 'f'), 'utf8')).toBe(SECRET);
    expect(await readFile(join(base, 'in/job/a'), 'utf8')).toBe('from-host');
  });

  it('a download never writes through a hard link already at the host destination', async () => {
    await link(join(outside, 'f'), join(base, 'dest/result'));
    await writeFile(join(base, 'out/result'), 'guest');
    await downloadFromVolume(mounts, '/golem/output/result', join(base, 'dest/result'));
    expect(await readFile(join(outside, 'f'), 'utf8')).toBe(SECRET);
    expect(await readFile(join(base, 'dest/result'), 'utf8')).toBe('guest');
  });
});

describe('smaller findings of the review', () => {
  it('downloaded files get their mode less the caller\'s umask', async () => {
    await writeFile(join(base, 'out/f'), 'guest');
    await chmod(join(base, 'out/f'), 0o666);
    const previous = process.umask(0o027);
    try {
      await downloadFromVolume(mounts, '/golem/output/f', join(base, 'dest/f'));
    } finally {
      process.umask(previous);
    }
    expect((await stat(join(base, 'dest/f'))).mode & 0o777).toBe(0o640);
  });

  it.skipIf(process.getuid?.() !== 0)(`a directory someone else made as an upload made it is not handed to QEMU's user (${ATTEMPTS} attempts)`, async () => {
    // QEMU's user owns the volume. Another root process puts its own d/ (with a marker) there
    // whenever there is none; each round removes d/ and uploads below it, racing that process to make it.
    const volume = join(base, 'in');
    const { chown } = await import('node:fs/promises');
    await chown(volume, 65534, 65534);
    await writeFile(join(base, 'payload'), 'from-host');
    const script = `
      const fs = require('node:fs');
      process.chdir(process.argv[1]);
      process.stdout.write('go\\n');
      for (;;) {
        try { fs.mkdirSync('.t'); } catch {}
        try { fs.writeFileSync('.t/mine', ''); } catch {}
        try { fs.renameSync('.t', 'd'); } catch {}
      }
    `;
    const child = spawn(process.execPath, ['-e', script, volume], { stdio: ['ignore', 'pipe', 'inherit'] });
    swapper = child;
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));
    let handedOver = 0;
    for (let i = 0; i < ATTEMPTS; i++) {
      await rm(join(volume, 'd'), { recursive: true, force: true }).catch(() => undefined);
      await uploadToVolume(mounts, join(base, 'payload'), `/golem/input/d/p${i}`).catch(() => undefined);
      const st = await lstat(join(volume, 'd')).catch(() => undefined);
      const marker = await lstat(join(volume, 'd/mine')).catch(() => undefined);
      // The other process's directory (its marker in it) given to QEMU's user by the upload.
      if (st && marker && st.uid === 65534) handedOver++;
    }
    expect(handedOver).toBe(0);
  });
});
