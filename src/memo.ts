/**
 * Small remembered answers under the cache directory (image digests, shadowed paths, QEMU probes):
 * an optimisation only, so reading a missing or unreadable memo gives undefined and writing one
 * never fails the caller. Written under a temporary name and renamed, so readers (other
 * processes included) see a whole memo or none.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { cacheDir } from './cache-dir.js';

/** The memos of one kind: `$GVMI_TEST_CACHE/<kind>/<hash of key>`. */
export function memoPath(kind: string, key: unknown): string {
  return join(cacheDir(), kind, createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 32));
}

export async function readMemo(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

export async function writeMemo(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await mkdir(dirname(path), { recursive: true })
    .then(() => writeFile(temporary, text))
    .then(() => rename(temporary, path))
    .catch(() => rm(temporary, { force: true }).catch(() => {}));
}
