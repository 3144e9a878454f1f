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
 * The top directory is given back first, so that QEMU's user can no longer rename its entries; the
 * tree is then walked by GNU `chown -R -P -h`, which never follows a symlink and works from
 * directory descriptors (fts), so another `nobody` process swapping a subdirectory for a link
 * during the walk cannot steer it out of the volume. Changing the owner of a regular file clears
 * its setuid/setgid bits (the kernel does so for root too), so a guest-made setuid program never
 * becomes the caller's.
 */
import { execFile } from 'node:child_process';
import { chmod, lchown, lstat } from 'node:fs/promises';
import { promisify } from 'node:util';

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
  const st = await lstat(original.path).catch(() => undefined);
  // Removed or replaced meanwhile (only its parent's owner could): nothing of ours to give back.
  if (!st || !st.isDirectory() || st.dev !== original.dev || st.ino !== original.ino) return;
  await lchown(original.path, original.uid, original.gid);
  await chmod(original.path, original.mode);
  await promisify(execFile)('chown', ['-R', '-P', '-h', `--from=${qemuUid}`, `${original.uid}:${original.gid}`, '--', original.path]);
}
