/**
 * Small remembered answers under the cache directory (image digests, shadowed paths, QEMU probes):
 * an optimisation only, so reading a missing or unreadable memo gives undefined and writing one
 * never fails the caller. Written under a temporary name and renamed, so readers (other
 * processes included) see a whole memo or none.
 *
 * A memo decides things (which snapshot an image restores, whether QEMU runs under seccomp), so
 * one another local user could have written or can still change is not believed: its directory
 * must be ours alone and the file, read through the descriptor that was checked, ours and not
 * writable by group or others (owned-path.ts). Such a memo reads as missing, and the answer is
 * worked out again. Memos are created 0600 in directories created 0700.
 */
import { constants } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { cacheDir } from './cache-dir.js';
import { notOurs, untrustedDirectory } from './owned-path.js';

/** The memos of one kind: `$GVMI_TEST_CACHE/<kind>/<hash of key>`. */
export function memoPath(kind: string, key: unknown): string {
  return join(cacheDir(), kind, createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 32));
}

export async function readMemo(path: string): Promise<string | undefined> {
  try {
    if (await untrustedDirectory(dirname(path))) return undefined;
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await handle.stat();
      return st.isFile() && !notOurs(path, st) ? await handle.readFile('utf8') : undefined;
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

export async function writeMemo(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    .then(async () => {
      // Not into a directory we would not read back from; `wx`: never through a planted link.
      if (await untrustedDirectory(dirname(path))) throw new Error('untrusted memo directory');
      await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
    })
    .then(() => rename(temporary, path))
    .catch(() => rm(temporary, { force: true }).catch(() => {}));
}
