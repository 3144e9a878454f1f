/**
 * Where a VM booted to be saved keeps its RAM (a shared file, so that it can be saved as a file:
 * src/qemu/migration.ts). In memory (/dev/shm) when there is one, so that nothing the guest writes
 * is written back to disk while it runs; else beside the VM's other files. Either must have room
 * for the whole guest RAM: a page the guest touches past a full tmpfs or disk is a SIGBUS that
 * ends QEMU (a container's /dev/shm is often 64 MiB). Without room anywhere the VM boots with
 * anonymous memory and its state is not saved (the snapshot policy reports why).
 */
import { mkdtemp, statfs } from 'node:fs/promises';
import { join } from 'node:path';

/** Left free beside the guest's RAM, for everything else using the filesystem. */
const MARGIN_BYTES = 64 * 1024 * 1024;

export const SHM_DIR = '/dev/shm';

/** Free bytes on the filesystem of `path` for an unprivileged writer, or undefined when it is not there. */
export type FreeSpace = (path: string) => Promise<number | undefined>;

export const freeSpace: FreeSpace = async (path) => {
  const st = await statfs(path).catch(() => undefined);
  return st ? st.bavail * st.bsize : undefined;
};

/** The first of `candidates` with room for `memoryMiB` and a margin, or undefined. */
export async function roomyDirectory(candidates: readonly string[], memoryMiB: number, free: FreeSpace = freeSpace): Promise<string | undefined> {
  const need = memoryMiB * 1024 * 1024 + MARGIN_BYTES;
  for (const dir of candidates) {
    const bytes = await free(dir);
    if (bytes !== undefined && bytes >= need) return dir;
  }
  return undefined;
}

/**
 * A fresh directory for the RAM file: in /dev/shm, else in `fallbackDir` (made by the caller, and
 * removed with it), whichever has room; undefined when neither has.
 */
export async function sharedMemoryDir(memoryMiB: number, fallbackDir: string, free: FreeSpace = freeSpace): Promise<{ dir: string; made: boolean } | undefined> {
  const where = await roomyDirectory([SHM_DIR, fallbackDir], memoryMiB, free);
  if (where === SHM_DIR) {
    const made = await mkdtemp(join(SHM_DIR, 'gvmi-ram-')).catch(() => undefined);
    if (made) return { dir: made, made: true };
    return (await roomyDirectory([fallbackDir], memoryMiB, free)) ? { dir: fallbackDir, made: false } : undefined;
  }
  return where ? { dir: where, made: false } : undefined;
}
