import { lstat, mkdir, mkdtemp, readFile, readlink, symlink, writeFile, chmod, stat, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { downloadFromVolume, locateInVolumes, uploadToVolume } from '../../../src/vm/transfer.js';
import type { VolumeMount } from '../../../src/vm/volumes.js';
import { isGvmiTestError } from '../../../src/errors.js';

let base: string;
let mounts: VolumeMount[];
let outside: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'gvmi-transfer-'));
  for (const d of ['in', 'out', 'nested', 'outside']) await mkdir(join(base, d));
  outside = join(base, 'outside');
  await writeFile(join(outside, 'secret'), 'host secret');
  mounts = [
    { guestPath: '/golem/input', hostPath: join(base, 'in'), tag: 'mnt0', temporary: true },
    { guestPath: '/golem/output', hostPath: join(base, 'out'), tag: 'mnt1', temporary: true },
    { guestPath: '/golem/output/deep', hostPath: join(base, 'nested'), tag: 'mnt2', temporary: true },
  ];
});

function code(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return isGvmiTestError(e) ? e.code : String(e);
  }
}

describe('provider transfer semantics', () => {
  it('the longest matching volume wins', () => {
    expect(locateInVolumes(mounts, '/golem/output/deep/x').mount.tag).toBe('mnt2');
    expect(locateInVolumes(mounts, '/golem/output/x').mount.tag).toBe('mnt1');
    expect(locateInVolumes(mounts, '/golem/output/deeper').mount.tag).toBe('mnt1');
  });

  it('a path outside every volume fails with the provider reason and names the volumes', () => {
    try {
      locateInVolumes(mounts, '/etc/passwd');
      expect.unreachable();
    } catch (e) {
      expect(isGvmiTestError(e, 'transfer.not-in-volume')).toBe(true);
      expect((e as Error).message).toContain('path not found in container');
      expect((e as { hint: string }).hint).toContain('/golem/input');
    }
    expect(code(() => locateInVolumes(mounts, '/golem/input/../../etc/passwd'))).toBe('transfer.not-in-volume');
    expect(code(() => locateInVolumes(mounts, 'relative/path'))).toBe('transfer.not-in-volume');
  });

  it('upload lands in the host side of the volume', async () => {
    await writeFile(join(base, 'data.txt'), 'data');
    await uploadToVolume(mounts, join(base, 'data.txt'), '/golem/input/sub/data.txt');
    expect(await readFile(join(base, 'in/sub/data.txt'), 'utf8')).toBe('data');
  });

  it('a guest path ending in a slash means into that directory', async () => {
    await writeFile(join(base, 'data.txt'), 'data');
    await uploadToVolume(mounts, join(base, 'data.txt'), '/golem/input/');
    await uploadToVolume(mounts, join(base, 'data.txt'), '/golem/input/sub/');
    expect(await readFile(join(base, 'in/data.txt'), 'utf8')).toBe('data');
    expect(await readFile(join(base, 'in/sub/data.txt'), 'utf8')).toBe('data');
  });

  it('upload replaces a guest-planted symlink instead of writing through it', async () => {
    await symlink(join(outside, 'secret'), join(base, 'in/target'));
    await writeFile(join(base, 'new.txt'), 'new');
    await uploadToVolume(mounts, join(base, 'new.txt'), '/golem/input/target');
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('host secret');
    expect((await lstat(join(base, 'in/target'))).isFile()).toBe(true);
  });

  it('upload through a symlinked directory stays inside the volume', async () => {
    await symlink(outside, join(base, 'in/dir'));
    await writeFile(join(base, 'new.txt'), 'new');
    await uploadToVolume(mounts, join(base, 'new.txt'), '/golem/input/dir/pwned');
    expect(await readdir(outside)).toEqual(['secret']);
  });

  it('download brings a symlink back as a symlink, never the host file it names', async () => {
    await symlink('/etc/passwd', join(base, 'out/x'));
    const target = join(base, 'fetched-x');
    const report = await downloadFromVolume(mounts, '/golem/output/x', target);
    expect(report.symlinks).toBe(1);
    expect((await lstat(target)).isSymbolicLink()).toBe(true);
    expect(await readlink(target)).toBe('/etc/passwd');
  });

  it('download through a symlinked directory cannot reach outside', async () => {
    await symlink(outside, join(base, 'out/escape'));
    await expect(downloadFromVolume(mounts, '/golem/output/escape/secret', join(base, 'got'))).rejects.toMatchObject({ code: 'transfer.failed' });
  });

  it('download strips setuid/setgid bits', async () => {
    await writeFile(join(base, 'out/suid'), '#!/bin/sh\n');
    await chmod(join(base, 'out/suid'), 0o6755);
    await downloadFromVolume(mounts, '/golem/output/suid', join(base, 'suid-copy'));
    expect((await stat(join(base, 'suid-copy'))).mode & 0o7777).toBe(0o755);
  });
});
