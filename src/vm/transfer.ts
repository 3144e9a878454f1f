/**
 * Files in and out of a VM the way a requestor's transfer works on a provider: only paths under a
 * volume (the longest matching one), read and written on the host side of the volume directory,
 * never through the guest. The guest controls what is in that directory, so nothing here follows
 * a guest-made symlink out of it, writes through one, or brings back setuid bits.
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile, cp, lchown, lstat, mkdir, readdir, readlink, stat, symlink, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join, posix } from 'node:path';
import { GvmiTestError } from '../errors.js';
import { volumeOf } from '../diagnostics/static-findings.js';
import { resolveInRoot, ScopedPathError } from '../image/scoped-path.js';
import type { VolumeMount } from './volumes.js';

export interface Located {
  mount: VolumeMount;
  /** Path relative to the volume root ('' for the root itself). */
  relative: string;
}

export function locateInVolumes(mounts: readonly VolumeMount[], guestPath: string): Located {
  if (!guestPath.startsWith('/')) {
    throw new GvmiTestError('transfer.not-in-volume', `${guestPath}: guest paths must be absolute`);
  }
  const normalised = posix.normalize(guestPath).replace(/\/+$/, '') || '/';
  const volume = volumeOf(mounts.map((m) => m.guestPath), normalised);
  const mount = mounts.find((m) => m.guestPath === volume);
  if (!mount) {
    const list = mounts.map((m) => m.guestPath).join(', ');
    throw new GvmiTestError('transfer.not-in-volume', `${guestPath}: path not found in container — files travel only to and from volumes`, {
      hint: mounts.length > 0 ? `use a path under one of the volumes: ${list}` : 'the image declares no VOLUME, so no file can be transferred; add one (e.g. VOLUME /golem/input)',
      details: { volumes: mounts.map((m) => m.guestPath) },
    });
  }
  const relative = normalised === mount.guestPath ? '' : normalised.slice(mount.guestPath === '/' ? 1 : mount.guestPath.length + 1);
  return { mount, relative };
}

async function scoped(mount: VolumeMount, relative: string, followFinal: boolean): Promise<string> {
  try {
    return await resolveInRoot(mount.hostPath, relative, followFinal);
  } catch (error) {
    if (error instanceof ScopedPathError) throw new GvmiTestError('transfer.escape', `${mount.guestPath}/${relative}: ${error.message}`);
    throw error;
  }
}

/** Copies a host file or directory to `guestPath` (under a volume). */
export async function uploadToVolume(mounts: readonly VolumeMount[], hostSource: string, guestPath: string): Promise<string> {
  const { mount, relative } = locateInVolumes(mounts, guestPath);
  const source = await lstat(hostSource).catch((cause: unknown) => {
    throw new GvmiTestError('transfer.failed', `cannot read ${hostSource}: ${(cause as NodeJS.ErrnoException).code}`, { cause });
  });
  if (relative === '' && !source.isDirectory()) {
    throw new GvmiTestError('transfer.failed', `${guestPath} is a volume root; upload a file to a path below it`);
  }
  const target = await scoped(mount, relative, false);
  await mkdir(dirname(target), { recursive: true });
  const existing = await lstat(target).catch(() => undefined);
  // A link the guest planted at the destination is replaced, never written through.
  if (existing?.isSymbolicLink()) await unlink(target);
  if (source.isDirectory()) await cp(hostSource, target, { recursive: true, force: true, verbatimSymlinks: true });
  else await copyFile(hostSource, target);
  await giveToVolumeOwner(mount.hostPath, target);
  return target;
}

/**
 * On a provider the requestor's files are written by the user QEMU runs as, so the guest may
 * change them. When we are root and QEMU is not, hand uploads (and directories made for them)
 * to the volume directory's owner.
 */
async function giveToVolumeOwner(volumeRoot: string, target: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const { uid, gid } = await stat(volumeRoot);
  if (uid === 0) return;
  const walk = async (path: string): Promise<void> => {
    await lchown(path, uid, gid);
    const st = await lstat(path);
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(target);
  for (let dir = dirname(target); dir.startsWith(`${volumeRoot}/`); dir = dirname(dir)) await lchown(dir, uid, gid);
}

/**
 * Copies a sparse file keeping its holes: GNU cp finds the data with SEEK_DATA/SEEK_HOLE, where
 * reading through the holes would take minutes for a file of terabytes.
 */
async function copySparse(source: string, target: string): Promise<void> {
  await promisify(execFile)('cp', ['--sparse=always', '--no-preserve=all', '--', source, target]);
}

export interface DownloadReport {
  files: number;
  symlinks: number;
  /** Device nodes, fifos, sockets: not copied. */
  skipped: string[];
}

async function copyOut(source: string, target: string, report: DownloadReport): Promise<void> {
  const st = await lstat(source);
  if (st.isSymbolicLink()) {
    await unlink(target).catch(() => {});
    await symlink(await readlink(source), target);
    report.symlinks++;
  } else if (st.isFile()) {
    const existing = await lstat(target).catch(() => undefined);
    if (existing?.isSymbolicLink()) await unlink(target);
    // A guest can make a 1 TB file that holds nothing: copy it with its holes, not its zeros.
    if (st.blocks * 512 < st.size) await copySparse(source, target);
    else await copyFile(source, target);
    await chmod(target, st.mode & 0o777); // setuid/setgid/sticky never reach the host
    report.files++;
  } else if (st.isDirectory()) {
    await mkdir(target, { recursive: true });
    for (const name of await readdir(source)) await copyOut(join(source, name), join(target, name), report);
  } else {
    report.skipped.push(source);
  }
}

/** Copies `guestPath` (under a volume) to `hostTarget`. Symlinks come back as symlinks. */
export async function downloadFromVolume(mounts: readonly VolumeMount[], guestPath: string, hostTarget: string): Promise<DownloadReport> {
  const { mount, relative } = locateInVolumes(mounts, guestPath);
  const source = await scoped(mount, relative, false);
  if (!(await lstat(source).catch(() => undefined))) {
    throw new GvmiTestError('transfer.failed', `${guestPath}: no such file in volume ${mount.guestPath}`);
  }
  const report: DownloadReport = { files: 0, symlinks: 0, skipped: [] };
  await mkdir(dirname(hostTarget), { recursive: true });
  await copyOut(source, hostTarget, report);
  return report;
}
