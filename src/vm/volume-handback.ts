/**
 * Giving volume directories back after a VM. When gvmi-test runs as root, each volume directory is
 * handed to QEMU's unprivileged user for the VM's lifetime (as a provider's belong to its own
 * user), and everything the guest writes there is owned by that user on the host. Left so, a
 * caller's `--volume GUEST=HOSTDIR` would stay writable by every process running as `nobody`, and
 * the guest's files would not be the caller's. So when the VM has stopped:
 *
 * - the directory gets back its recorded owner, group and mode (the guest may have chmod'ed it);
 * - every entry under it owned by QEMU's user (what the guest made: it cannot chown) goes to the
 *   directory's original owner and group; entries of anyone else are left as they are.
 *
 * Nothing is done by path. The volume directory is pinned (an O_PATH descriptor, the last
 * component not followed) and checked to be the directory recorded; its owner and mode are set
 * through that descriptor (`/proc/self/fd/N`, which the kernel resolves to the pinned inode itself,
 * wherever its name now points). It is given back first, so QEMU's user can no longer rename its
 * entries; the tree below is then walked the same way (PinnedDir: each entry pinned O_PATH|O_NOFOLLOW
 * and fstat'ed, each directory taken back before it is entered), and every entry is chown'ed
 * through its own descriptor: for a symlink that changes the link, never what it names, and
 * nothing is opened for I/O (a fifo or a device is never opened). No tool is run (a `chown` found
 * through PATH was one more way in). Changing the owner of a regular file clears its
 * setuid/setgid bits (the kernel does so for root too), so a guest-made setuid program never
 * becomes the caller's.
 */
import { chmod, chown, lstat } from 'node:fs/promises';
import { PinnedDir, UnsafeEntryError } from '../pinned-dir.js';

/** A volume directory as it was before it was handed to QEMU's user. */
export interface OriginalOwnership {
  path: string;
  dev: number;
  ino: number;
  uid: number;
  gid: number;
  /** Permission bits (with setuid/setgid/sticky). */
  mode: number;
}

export async function recordOwnership(path: string): Promise<OriginalOwnership> {
  const st = await lstat(path);
  return { path, dev: st.dev, ino: st.ino, uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
}

/** Gives `original.path` and what QEMU's user (`qemuUid`) owns under it back to the original owner. */
export async function handBack(original: OriginalOwnership, qemuUid: number): Promise<void> {
  let dir: PinnedDir;
  try {
    dir = await PinnedDir.openExpected(original.path, { dev: original.dev, ino: original.ino });
  } catch (error) {
    // Removed or replaced meanwhile (only its parent's owner could): nothing of ours to give back.
    const code = (error as NodeJS.ErrnoException).code;
    if (error instanceof UnsafeEntryError || code === 'ENOENT' || code === 'ENOTDIR') return;
    throw error;
  }
  try {
    const self = `/proc/self/fd/${dir.fd}`;
    await chown(self, original.uid, original.gid);
    await chmod(self, original.mode);
    await giveBackBelow(dir, qemuUid, original.uid, original.gid);
  } finally {
    await dir.close();
  }
}

/** Every entry below `dir` owned by `qemuUid` goes to `uid:gid`, through its own pinned descriptor. */
async function giveBackBelow(dir: PinnedDir, qemuUid: number, uid: number, gid: number): Promise<void> {
  for (const name of await dir.list()) {
    const entry = await dir.entry(name);
    if (!entry) continue;
    try {
      const st = entry.stats;
      if (!st.isDirectory()) {
        if (st.uid === qemuUid) await chown(`/proc/self/fd/${entry.handle.fd}`, uid, gid);
        continue;
      }
      const sub = await dir.dir(name).catch(() => undefined);
      // Swapped since it was pinned: what is there now is not the directory looked at.
      if (!sub || sub.stats.dev !== st.dev || sub.stats.ino !== st.ino) {
        await sub?.close();
        continue;
      }
      try {
        if (st.uid === qemuUid) await chown(`/proc/self/fd/${sub.fd}`, uid, gid);
        await giveBackBelow(sub, qemuUid, uid, gid);
      } finally {
        await sub.close();
      }
    } finally {
      await entry.close();
    }
  }
}
