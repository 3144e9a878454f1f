/**
 * Files in and out of a VM the way a requestor's transfer works on a provider: only paths under a
 * volume (the longest matching one), read and written on the host side of the volume directory,
 * never through the guest.
 *
 * Threat model: the guest owns what is in its volume directories and changes it while we copy
 * (a file swapped for a symlink between our look and our open, a directory for a link between two
 * steps). So every step on either side is descriptor-relative and never follows a link
 * (PinnedDir): a guest-made link comes back as a link, is replaced rather than written through,
 * and a swap makes a transfer fail instead of reaching outside the volume. We take no more
 * rights than QEMU's user has there: a volume file that user could not read is not read for it,
 * and what we write into a volume belongs to that user, as a provider's files do. On the host side,
 * nothing below the destination's root is followed either (a link left by an earlier download is
 * replaced), setuid/setgid bits never come back, and a host symlink is never uploaded as the
 * file it names.
 */
import { spawn } from 'node:child_process';
import { constants, readFileSync, type Stats } from 'node:fs';
import { chown, lchown, mkdir, type FileHandle } from 'node:fs/promises';
import { basename, dirname, posix, relative as relativePath, resolve } from 'node:path';
import { GvmiTestError } from '../errors.js';
import { volumeOf } from '../image/static-findings.js';
import { splitPath } from '../image/scoped-path.js';
import { PinnedDir, PinnedEntry, UnsafeEntryError } from '../pinned-dir.js';
import type { VolumeMount } from './volumes.js';

export interface Located<M extends { guestPath: string } = VolumeMount> {
  mount: M;
  /** Path relative to the volume root ('' for the root itself). */
  relative: string;
}

export function locateInVolumes<M extends { guestPath: string } = VolumeMount>(mounts: readonly M[], guestPath: string): Located<M> {
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

const MAX_SYMLINK_HOPS = 40;
const COPY_CHUNK_BYTES = 1 << 20;

/** Whose rights a transfer in a volume has: QEMU's user's, when we are root and it is not. */
interface VolumeRights {
  uid: number;
  gid: number;
}

function rightsIn(root: PinnedDir): VolumeRights | undefined {
  if (process.getuid?.() !== 0 || root.stats.uid === 0) return undefined;
  return { uid: root.stats.uid, gid: root.stats.gid };
}

/** Whether `rights` allow `want` (bits of r=4, w=2, x=1) on an inode with these stats. */
function allowed(st: Stats, rights: VolumeRights | undefined, want: number): boolean {
  if (!rights) return true;
  const bits = st.uid === rights.uid ? (st.mode >> 6) & 7 : st.gid === rights.gid ? (st.mode >> 3) & 7 : st.mode & 7;
  return (bits & want) === want;
}

function escapeError(where: string, error: unknown): GvmiTestError {
  return new GvmiTestError('transfer.escape', `${where}: ${(error as Error).message} (the volume changed while it was being copied, or holds a link where a directory is needed)`, { cause: error });
}

/** The volume's host directory, refused when it is no longer the one planned (a link put in its place). */
async function openVolumeRoot(mount: VolumeMount): Promise<PinnedDir> {
  try {
    return await PinnedDir.openExpected(mount.hostPath, mount.identity);
  } catch (error) {
    throw error instanceof UnsafeEntryError ? escapeError(mount.guestPath, error) : error;
  }
}

/** Closes every directory opened on the way, but the one returned. */
async function closeAll(dirs: readonly PinnedDir[], keep?: PinnedDir): Promise<void> {
  for (const d of dirs) if (d !== keep) await d.close();
}

/**
 * Walks `relative` below a volume root the way the guest resolves it: links in the middle are
 * followed but never out of the root (an absolute target restarts at the root, `..` stops at
 * it), the last component is left as is. With `create`, missing directories are made (owned by
 * QEMU's user). Returns the parent directory and the last name (undefined for the root itself).
 */
async function walkVolume(root: PinnedDir, relative: string, create: VolumeRights | 'no' | undefined): Promise<{ parent: PinnedDir; name: string | undefined }> {
  let pending = splitPath(relative);
  const stack: PinnedDir[] = [root];
  let hops = 0;
  const opened: PinnedDir[] = [];
  try {
    while (pending.length > 1 || pending[0] === '..') {
      const component = pending.shift()!;
      const top = stack[stack.length - 1]!;
      if (component === '..') {
        if (stack.length > 1) stack.pop();
        continue;
      }
      const entry = await top.entry(component);
      const st = entry?.stats;
      await entry?.close();
      if (st?.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) throw new UnsafeEntryError(component, 'too many symlinks');
        const target = await top.readlink(component);
        if (target.startsWith('/')) stack.length = 1;
        pending = [...splitPath(target), ...pending];
        continue;
      }
      let next: PinnedDir;
      if (!st) {
        if (create === 'no') throw new GvmiTestError('transfer.failed', `${component}: no such directory in the volume`);
        const made = await top.ensureDir(component);
        next = made.dir;
        if (made.created && create) await chown(`/proc/self/fd/${next.fd}`, create.uid, create.gid);
      } else {
        const dir = await top.dir(component);
        if (!dir) throw new UnsafeEntryError(component, `${component} vanished`);
        next = dir;
      }
      opened.push(next);
      stack.push(next);
    }
    const parent = stack[stack.length - 1]!;
    await closeAll(opened, parent);
    return { parent, name: pending[0] };
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
}

/** Copies the content of one open regular file to another, keeping holes of a sparse file. */
async function copyData(from: FileHandle, to: FileHandle, st: Stats, limit?: { budget: DownloadBudget; where: string }): Promise<void> {
  if (st.blocks * 512 < st.size) {
    limit?.budget.spend(limit.where, st.blocks * 512);
    // A guest can make a 1 TB file that holds nothing: GNU cp finds the data with SEEK_DATA and
    // SEEK_HOLE (Node has no lseek). It gets both files as descriptors, never by name. With a
    // budget, the target's allocated size is watched while cp runs (the guest may fill the file
    // meanwhile) and cp is killed once it would go past what is left.
    const allowed = limit ? limit.budget.remaining + st.blocks * 512 : Infinity;
    let over = false;
    await new Promise<void>((resolvePromise, reject) => {
      const child = spawn('/bin/cp', ['--sparse=always', '--no-preserve=all', '--', '/dev/stdin', '/dev/stdout'], { stdio: [from.fd, to.fd, 'pipe'] });
      const watch = limit
        ? setInterval(() => {
          void to.stat().then((now) => {
            if (now.blocks * 512 > allowed) {
              over = true;
              child.kill('SIGKILL');
            }
          }, () => {});
        }, 50)
        : undefined;
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.once('error', (error) => { clearInterval(watch); reject(error); });
      child.once('close', (code) => {
        clearInterval(watch);
        if (over && limit) reject(tooLarge(limit.where, `more than ${limit.budget.limits.maxBytes} bytes`, 'maxBytes'));
        else if (code === 0) resolvePromise();
        else reject(new Error(`cp: ${stderr.trim() || `exit ${code}`}`));
      });
    });
    if (limit) {
      const written = (await to.stat()).blocks * 512;
      limit.budget.spend(limit.where, Math.max(0, written - st.blocks * 512));
    }
    return;
  }
  const buffer = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
  for (;;) {
    // Never more than the budget allows, plus one byte to tell "exactly at the limit" from "past it".
    const want = limit ? Math.max(0, Math.min(buffer.length, limit.budget.remaining + 1)) : buffer.length;
    const { bytesRead } = await from.read(buffer, 0, want, null);
    if (bytesRead === 0) return;
    limit?.budget.spend(limit.where, bytesRead);
    let written = 0;
    while (written < bytesRead) written += (await to.write(buffer, written, bytesRead - written)).bytesWritten;
  }
}

/** Makes room for a new entry `name` in `dir`: a link or file there goes, a directory stays (and is an error unless wanted). */
async function clearForEntry(dir: PinnedDir, name: string, want: 'file' | 'dir' | 'link'): Promise<void> {
  const existing = await dir.lstat(name);
  if (!existing) return;
  if (existing.isDirectory()) {
    if (want === 'dir') return;
    throw new GvmiTestError('transfer.failed', `${dir.label}/${name} exists and is a directory`);
  }
  // A file is replaced, never truncated in place (it may be a hard link to a file elsewhere).
  await dir.unlink(name);
}

/**
 * How much one download may bring back, enforced while the volume is walked (a guest controls
 * what is there: a tree a million entries wide, ten thousand deep, or a file that grows while it
 * is copied). Past any of them the download stops with `transfer.too-large`; what was copied so
 * far stays, but the file being written when the byte budget ran out is removed.
 */
export interface DownloadLimits {
  /** Bytes written to the host: a dense file's content, a sparse file's allocated blocks (default 8 GiB). */
  maxBytes?: number;
  /** Entries (files, directories, links, skipped ones) (default 1,000,000). */
  maxEntries?: number;
  /** Directory levels below the downloaded path (default 256). */
  maxDepth?: number;
}

export const DEFAULT_DOWNLOAD_LIMITS: Required<DownloadLimits> = { maxBytes: 8 * 1024 ** 3, maxEntries: 1_000_000, maxDepth: 256 };

/** What is left of a download's budget, shared by the whole walk. */
class DownloadBudget {
  private bytes = 0;
  private entries = 0;
  readonly limits: Required<DownloadLimits>;

  constructor(limits: DownloadLimits | undefined) {
    this.limits = { ...DEFAULT_DOWNLOAD_LIMITS, ...Object.fromEntries(Object.entries(limits ?? {}).filter(([, v]) => v !== undefined)) };
  }

  entry(where: string): void {
    if (++this.entries > this.limits.maxEntries) throw tooLarge(where, `more than ${this.limits.maxEntries} entries`, 'maxEntries');
  }

  /** Bytes still allowed. */
  get remaining(): number {
    return this.limits.maxBytes - this.bytes;
  }

  spend(where: string, bytes: number): void {
    this.bytes += bytes;
    if (this.bytes > this.limits.maxBytes) throw tooLarge(where, `more than ${this.limits.maxBytes} bytes`, 'maxBytes');
  }
}

function tooLarge(where: string, what: string, limit: keyof DownloadLimits): GvmiTestError {
  return new GvmiTestError('transfer.too-large', `${where}: the download goes past its budget (${what})`, {
    hint: `raise the download's limits.${limit} (library) or, for serve, --max-transfer-mib; or make the guest leave less in the volume`,
    details: { limit },
  });
}

export interface DownloadReport {
  files: number;
  symlinks: number;
  /** Device nodes, fifos, sockets: not copied. Also entries that changed while being copied. */
  skipped: string[];
}

interface CopySide {
  dir: PinnedDir;
  name: string;
}

interface CopyContext {
  /** Rights on the volume side (QEMU's user), or undefined when they are ours. */
  rights: VolumeRights | undefined;
  budget: DownloadBudget;
  /** The host process's umask, applied to the modes of downloaded files. */
  umask: number;
  /** Directory levels below the downloaded path of the entry copied (its children are one more). */
  depth: number;
  report: DownloadReport;
  /** Guest-side path of the entry, for messages. */
  where: string;
}

/** Volume → host, one entry and what is below it. */
async function copyOut(source: CopySide, target: CopySide, ctx: CopyContext): Promise<void> {
  ctx.budget.entry(ctx.where);
  const entry = await source.dir.entry(source.name);
  if (!entry) {
    ctx.report.skipped.push(ctx.where);
    return;
  }
  try {
    const st = entry.stats;
    if (st.isSymbolicLink()) {
      const link = await source.dir.readlink(source.name).catch(() => undefined);
      if (link === undefined) return void ctx.report.skipped.push(ctx.where);
      await clearForEntry(target.dir, target.name, 'link');
      await target.dir.symlink(target.name, link);
      ctx.report.symlinks++;
    } else if (st.isFile()) {
      assertAllowed(st, ctx, 4);
      await copyFileOut(entry, target, st, ctx);
      ctx.report.files++;
    } else if (st.isDirectory()) {
      assertAllowed(st, ctx, 5);
      const from = await source.dir.dir(source.name);
      if (!from || from.stats.ino !== st.ino) {
        await from?.close();
        return void ctx.report.skipped.push(ctx.where);
      }
      try {
        await copyDirInto(from, target, ctx);
      } finally {
        await from.close();
      }
    } else {
      ctx.report.skipped.push(ctx.where);
    }
  } finally {
    await entry.close();
  }
}

/** Makes (or reuses) the directory `target` and copies what is in `from` into it. */
async function copyDirInto(from: PinnedDir, target: CopySide, ctx: CopyContext): Promise<void> {
  await clearForEntry(target.dir, target.name, 'dir');
  const { dir: into } = await target.dir.ensureDir(target.name);
  try {
    await copyChildren(from, into, ctx);
  } finally {
    await into.close();
  }
}

async function copyChildren(from: PinnedDir, into: PinnedDir, ctx: CopyContext): Promise<void> {
  // `from` is ctx.depth directory levels below the downloaded path (which is level 0).
  if (ctx.depth > ctx.budget.limits.maxDepth) throw tooLarge(ctx.where, `more than ${ctx.budget.limits.maxDepth} directory levels deep`, 'maxDepth');
  for (const name of await from.list()) {
    await copyOut({ dir: from, name }, { dir: into, name }, { ...ctx, depth: ctx.depth + 1, where: `${ctx.where}/${name}` });
  }
}

function assertAllowed(st: Stats, ctx: CopyContext, want: number): void {
  if (!allowed(st, ctx.rights, want)) {
    throw new GvmiTestError('transfer.failed', `${ctx.where}: permission denied (QEMU's user, who owns the volume, may not read it either; a provider could not send it)`);
  }
}

async function copyFileOut(entry: PinnedEntry, target: CopySide, st: Stats, ctx: CopyContext): Promise<void> {
  const from = await entry.reopen(constants.O_RDONLY);
  try {
    await clearForEntry(target.dir, target.name, 'file');
    const { handle: to } = await target.dir.createFile(target.name, 0o600);
    try {
      await copyData(from, to, st, { budget: ctx.budget, where: ctx.where });
      // setuid/setgid/sticky never reach the host, and the caller's umask applies as for any file it makes.
      await to.chmod(st.mode & 0o777 & ~ctx.umask);
    } catch (error) {
      // Over the budget: the partial file goes (it may be most of the disk).
      if (error instanceof GvmiTestError && error.code === 'transfer.too-large') await target.dir.unlink(target.name).catch(() => {});
      throw error;
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

export interface DownloadOptions {
  /**
   * A directory the caller owns, with `hostTarget` below it: nothing between the two is followed
   * (a link left there by an earlier download is replaced by a directory). Without it, the
   * target's parent is made and followed as the caller named it.
   */
  root?: string;
  /** The download's budget (DEFAULT_DOWNLOAD_LIMITS for what is not given). */
  limits?: DownloadLimits;
}

/** The process's umask, read without changing it (process.umask() with no argument is deprecated). */
function currentUmask(): number {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('Umask:'));
    if (line) return Number.parseInt(line.slice('Umask:'.length).trim(), 8) & 0o777;
  } catch {
    // no procfs: fall through
  }
  return 0o022;
}

/** Opens (making it as needed) the directory that will hold `hostTarget`. */
async function openTargetParent(hostTarget: string, options: DownloadOptions): Promise<{ parent: PinnedDir; name: string }> {
  const target = resolve(hostTarget);
  const name = basename(target);
  if (!options.root) {
    await mkdir(dirname(target), { recursive: true });
    return { parent: await PinnedDir.open(dirname(target)), name };
  }
  const root = resolve(options.root);
  const rel = relativePath(root, target);
  if (rel === '' || rel.startsWith('..') || rel.startsWith('/')) {
    throw new GvmiTestError('transfer.escape', `${hostTarget} is not below ${options.root}`);
  }
  await mkdir(root, { recursive: true });
  let dir = await PinnedDir.open(root);
  const components = rel.split('/');
  try {
    for (const component of components.slice(0, -1)) {
      await clearForEntry(dir, component, 'dir');
      const { dir: next } = await dir.ensureDir(component);
      await dir.close();
      dir = next;
    }
  } catch (error) {
    await dir.close();
    throw error;
  }
  return { parent: dir, name: components[components.length - 1]! };
}

/** Copies `guestPath` (under a volume) to `hostTarget`. Symlinks come back as symlinks. */
export async function downloadFromVolume(mounts: readonly VolumeMount[], guestPath: string, hostTarget: string, options: DownloadOptions = {}): Promise<DownloadReport> {
  const { mount, relative } = locateInVolumes(mounts, guestPath);
  const report: DownloadReport = { files: 0, symlinks: 0, skipped: [] };
  const root = await openVolumeRoot(mount);
  let parent: PinnedDir | undefined;
  let target: { parent: PinnedDir; name: string } | undefined;
  try {
    const ctx: CopyContext = { rights: rightsIn(root), budget: new DownloadBudget(options.limits), umask: currentUmask(), depth: 0, report, where: guestPath };
    const walked = await walkVolume(root, relative, 'no');
    parent = walked.parent;
    if (walked.name !== undefined && !(await parent.lstat(walked.name))) {
      throw new GvmiTestError('transfer.failed', `${guestPath}: no such file in volume ${mount.guestPath}`);
    }
    target = await openTargetParent(hostTarget, options);
    if (walked.name === undefined) {
      assertAllowed(root.stats, ctx, 5);
      await copyDirInto(root, { dir: target.parent, name: target.name }, ctx);
    } else {
      await copyOut({ dir: parent, name: walked.name }, { dir: target.parent, name: target.name }, ctx);
    }
    return report;
  } catch (error) {
    if (error instanceof UnsafeEntryError) throw escapeError(guestPath, error);
    if (error instanceof GvmiTestError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new GvmiTestError(code === 'ELOOP' ? 'transfer.escape' : 'transfer.failed', `${guestPath}: ${(error as Error).message}`, { cause: error });
  } finally {
    if (parent && parent !== root) await parent.close();
    await target?.parent.close();
    await root.close();
  }
}

/** Host → volume, one entry and what is below it; new entries go to QEMU's user. */
async function copyIn(source: CopySide, target: CopySide, owner: VolumeRights | undefined): Promise<void> {
  const entry = await source.dir.entry(source.name);
  if (!entry) throw new GvmiTestError('transfer.failed', `${source.dir.label}/${source.name} vanished while it was being copied`);
  try {
    const st = entry.stats;
    if (st.isSymbolicLink()) {
      // Inside an uploaded directory a link is sent as a link (the guest resolves it in its own tree).
      const link = await source.dir.readlink(source.name);
      await clearForEntry(target.dir, target.name, 'link');
      await target.dir.symlink(target.name, link);
      if (owner) await lchown(target.dir.pathOf(target.name), owner.uid, owner.gid);
    } else if (st.isFile()) {
      const from = await entry.reopen(constants.O_RDONLY);
      try {
        await clearForEntry(target.dir, target.name, 'file');
        const { handle: to } = await target.dir.createFile(target.name, 0o600);
        try {
          await copyData(from, to, st);
          await to.chmod(st.mode & 0o777);
          if (owner) await to.chown(owner.uid, owner.gid);
        } finally {
          await to.close();
        }
      } finally {
        await from.close();
      }
    } else if (st.isDirectory()) {
      const from = await source.dir.dir(source.name);
      if (!from) throw new GvmiTestError('transfer.failed', `${source.dir.label}/${source.name} vanished while it was being copied`);
      try {
        await clearForEntry(target.dir, target.name, 'dir');
        const { dir: into, created } = await target.dir.ensureDir(target.name);
        try {
          if (created && owner) await chown(`/proc/self/fd/${into.fd}`, owner.uid, owner.gid);
          for (const name of await from.list()) await copyIn({ dir: from, name }, { dir: into, name }, owner);
        } finally {
          await into.close();
        }
      } finally {
        await from.close();
      }
    } else {
      throw new GvmiTestError('transfer.failed', `${source.dir.label}/${source.name} is not a file, directory or symlink`);
    }
  } finally {
    await entry.close();
  }
}

/** Copies a host file or directory to `guestPath` (under a volume). Returns the host path written. */
export async function uploadToVolume(mounts: readonly VolumeMount[], hostSource: string, guestPath: string): Promise<string> {
  const source = resolve(hostSource);
  // A trailing slash means "into this directory", as with cp.
  if (guestPath.endsWith('/')) guestPath = `${guestPath}${basename(source)}`;
  const { mount, relative } = locateInVolumes(mounts, guestPath);
  if (source === '/') throw new GvmiTestError('transfer.failed', 'cannot upload the host root directory');
  const sourceParent = await PinnedDir.open(dirname(source)).catch((cause: unknown) => {
    throw new GvmiTestError('transfer.failed', `cannot read ${hostSource}: ${(cause as NodeJS.ErrnoException).code}`, { cause });
  });
  const root = await openVolumeRoot(mount).catch(async (error: unknown) => {
    await sourceParent.close();
    throw error;
  });
  let parent: PinnedDir | undefined;
  try {
    const sourceStats = await sourceParent.lstat(basename(source));
    if (!sourceStats) throw new GvmiTestError('transfer.failed', `cannot read ${hostSource}: ENOENT`);
    if (sourceStats.isSymbolicLink()) {
      // A link may have come back from a guest (`--output`): following it could send any host file in.
      throw new GvmiTestError('transfer.failed', `${hostSource} is a symlink: gvmi-test does not upload what a link points to`, {
        hint: `name the file itself if you mean it: ${hostSource} → $(readlink -f ${hostSource})`,
      });
    }
    if (relative === '' && !sourceStats.isDirectory()) {
      throw new GvmiTestError('transfer.failed', `${guestPath} is a volume root; upload a file to a path below it`);
    }
    const owner = rightsIn(root);
    const walked = await walkVolume(root, relative, owner);
    parent = walked.parent;
    if (walked.name === undefined) {
      const from = await sourceParent.dir(basename(source));
      if (!from) throw new GvmiTestError('transfer.failed', `${hostSource} vanished while it was being copied`);
      try {
        for (const name of await from.list()) await copyIn({ dir: from, name }, { dir: root, name }, owner);
      } finally {
        await from.close();
      }
      return mount.hostPath;
    }
    await copyIn({ dir: sourceParent, name: basename(source) }, { dir: parent, name: walked.name }, owner);
    return `${mount.hostPath}/${relative}`;
  } catch (error) {
    if (error instanceof UnsafeEntryError) throw escapeError(guestPath, error);
    if (error instanceof GvmiTestError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new GvmiTestError(code === 'ELOOP' ? 'transfer.escape' : 'transfer.failed', `${guestPath}: ${(error as Error).message}`, { cause: error });
  } finally {
    if (parent && parent !== root) await parent.close();
    await root.close();
    await sourceParent.close();
  }
}

/**
 * Empties a volume directory without following anything in it (the guest may still be swapping
 * entries for links): what a reset between tests does.
 */
export async function emptyVolume(mount: VolumeMount): Promise<void> {
  const root = await openVolumeRoot(mount);
  try {
    for (const name of await root.list()) await root.removeTree(name);
  } finally {
    await root.close();
  }
}
