/**
 * Directory operations that a concurrent writer cannot redirect. A guest controls what is in its
 * volume directories and changes it while the host works there (it swaps a file for a symlink
 * between the host's check and its copy, or a directory for a link between two steps of a walk),
 * so a host that names volume files by path can be sent anywhere its user may go.
 *
 * A PinnedDir holds an O_PATH descriptor of one directory, and every operation names a single
 * component below it through `/proc/self/fd/<fd>/<name>`: the kernel resolves the magic link to
 * the directory the descriptor pins, wherever it has been moved, and the final component is never
 * followed (O_NOFOLLOW, lstat, mkdir, unlink, rename). That is openat(2) without Node bindings
 * for it. Entries are opened O_PATH first and fstat'ed, so nothing with side effects on open (a
 * fifo, a device) is ever opened for I/O, and a swap between the look and the open is seen as the
 * wrong type or a different inode instead of being followed.
 */
import { constants, type Stats } from 'node:fs';
import { mkdir, open, readdir, readlink, rmdir, symlink, unlink, lstat, type FileHandle } from 'node:fs/promises';

/** Linux's O_PATH (x86-64, arm64): Node passes open(2) flags through but does not name this one. */
export const O_PATH = 0o10000000;
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK, O_NOCTTY } = constants;

export class UnsafeEntryError extends Error {
  constructor(readonly component: string, message: string) {
    super(message);
  }
}

/** A name fit for one directory step: no slash, not empty, not `.` or `..`. */
export function assertComponent(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new UnsafeEntryError(name, `${JSON.stringify(name)} is not a single path component`);
  }
}

function procPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/** An entry below a PinnedDir, pinned by an O_PATH descriptor (close it when done). */
export class PinnedEntry {
  constructor(readonly handle: FileHandle, readonly stats: Stats) {}

  /** Opens the pinned inode itself for I/O (the same inode, whatever now has its name). */
  async reopen(flags: number): Promise<FileHandle> {
    const handle = await open(procPath(this.handle.fd), flags | O_NOCTTY | O_NONBLOCK);
    const st = await handle.stat();
    if (st.ino !== this.stats.ino || st.dev !== this.stats.dev) {
      await handle.close();
      throw new Error('the entry changed while it was opened');
    }
    return handle;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

export class PinnedDir {
  private constructor(private readonly handle: FileHandle, readonly stats: Stats, readonly label: string) {}

  /** Pins `path` itself, following links in it: the caller vouches for this path (a root it chose). */
  static async open(path: string): Promise<PinnedDir> {
    const handle = await open(path, O_PATH | O_DIRECTORY);
    return new PinnedDir(handle, await handle.stat(), path);
  }

  /**
   * Pins a directory that must still be the one recorded (`identity`): the last component is not
   * followed, and a directory that was replaced (by a link, or another directory) is refused.
   */
  static async openExpected(path: string, identity: { dev: number; ino: number } | undefined): Promise<PinnedDir> {
    if (!identity) return PinnedDir.open(path);
    let handle: FileHandle;
    try {
      handle = await open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR') throw new UnsafeEntryError(path, `${path} is no longer the volume directory (it was replaced by a link)`);
      throw error;
    }
    const stats = await handle.stat();
    if (stats.dev !== identity.dev || stats.ino !== identity.ino) {
      await handle.close();
      throw new UnsafeEntryError(path, `${path} is no longer the volume directory (it was replaced)`);
    }
    return new PinnedDir(handle, stats, path);
  }

  get fd(): number {
    return this.handle.fd;
  }

  /** A path that names this directory's `name` (for tools that take paths, e.g. `cp`). */
  pathOf(name: string): string {
    assertComponent(name);
    return procPath(this.fd, name);
  }

  /** lstat of `name` (undefined when there is none). */
  async lstat(name: string): Promise<Stats | undefined> {
    return lstat(this.pathOf(name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
  }

  /** Pins `name` without following it (a symlink is pinned as the link); undefined when missing. */
  async entry(name: string): Promise<PinnedEntry | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(name), O_PATH | O_NOFOLLOW);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      return new PinnedEntry(handle, await handle.stat());
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** The directory `name`, never through a symlink; undefined when missing, an error when not a directory. */
  async dir(name: string): Promise<PinnedDir | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(name), O_PATH | O_NOFOLLOW | O_DIRECTORY);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ENOTDIR' || code === 'ELOOP') throw new UnsafeEntryError(name, `${this.label}/${name} is not a directory`);
      throw error;
    }
    return new PinnedDir(handle, await handle.stat(), `${this.label}/${name}`);
  }

  /** The directory `name`, made when missing (mode before umask); `created` only when this call made it. */
  async ensureDir(name: string, mode = 0o755): Promise<{ dir: PinnedDir; created: boolean }> {
    const existing = await this.dir(name);
    if (existing) return { dir: existing, created: false };
    let created = true;
    try {
      await mkdir(this.pathOf(name), mode);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // Someone else made it between the look and the mkdir: not ours (a caller that hands what it
      // created to QEMU's user must not hand this one over).
      created = false;
    }
    const made = await this.dir(name);
    if (!made) throw new UnsafeEntryError(name, `${this.label}/${name} vanished as it was made`);
    // Between the mkdir and the open, another directory may have been renamed over the empty one
    // made here: what is pinned counts as made here only if it is still ours and empty.
    if (created && (made.stats.uid !== process.geteuid?.() || (await made.list()).length > 0)) created = false;
    return { dir: made, created };
  }

  async list(): Promise<string[]> {
    return readdir(procPath(this.fd));
  }

  async readlink(name: string): Promise<string> {
    return readlink(this.pathOf(name));
  }

  async symlink(name: string, target: string): Promise<void> {
    await symlink(target, this.pathOf(name));
  }

  async unlink(name: string): Promise<void> {
    await unlink(this.pathOf(name));
  }

  /** Removes `name` and, for a directory, everything below it, without following any link. */
  async removeTree(name: string): Promise<void> {
    const st = await this.lstat(name);
    if (!st) return;
    if (!st.isDirectory()) {
      await this.unlink(name).catch(ignoreMissing);
      return;
    }
    const sub = await this.dir(name).catch(() => undefined);
    if (sub) {
      try {
        for (const child of await sub.list()) await sub.removeTree(child);
      } finally {
        await sub.close();
      }
    }
    await rmdir(this.pathOf(name)).catch(ignoreMissing);
  }

  /**
   * A new regular file `name` opened for writing: always a new inode, made here (O_CREAT|O_EXCL,
   * never following a link). Whatever had the name is removed first (a directory is refused). An
   * existing file is never truncated in place: it may be a hard link, planted by whoever controls
   * the directory, to a file elsewhere that would then be written through (or chown'ed after).
   * Should the name be taken again between the unlink and the create (a racing writer), the
   * create fails rather than open what was put there.
   */
  async createFile(name: string, mode = 0o600): Promise<{ handle: FileHandle; created: boolean }> {
    const existing = await this.lstat(name);
    if (existing?.isDirectory()) throw new UnsafeEntryError(name, `${this.label}/${name} exists and is a directory`);
    if (existing) await this.unlink(name).catch(ignoreMissing);
    try {
      return { handle: await open(this.pathOf(name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY, mode), created: existing === undefined };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new UnsafeEntryError(name, `${this.label}/${name} was made again by someone else while it was being replaced`);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => {});
  }
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}
