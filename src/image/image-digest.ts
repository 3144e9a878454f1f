/**
 * The SHA-256 of a .gvmi's bytes, remembered by (device, inode, size, mtime, ctime) as git's index
 * does: a snapshot must never be restored over a different image at the same path, yet hashing a
 * large image on every start would cost more than the snapshot saves.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir } from '../cache-dir.js';

const RACY_MS = 2000;

function statKey(st: { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }, path: string): string {
  return createHash('sha256').update(JSON.stringify([path, st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs])).digest('hex').slice(0, 32);
}

export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function imageDigest(path: string): Promise<string> {
  const before = await stat(path);
  const memoDir = join(cacheDir(), 'digests');
  const memo = join(memoDir, statKey(before, path));
  const remembered = await readFile(memo, 'utf8').catch(() => undefined);
  if (remembered && /^[0-9a-f]{64}$/.test(remembered)) return remembered;
  const digest = await hashFile(path);
  const after = await stat(path);
  // Changed while being read: the digest describes neither version. Written in the last moments:
  // a rewrite within the same timestamp tick would go unseen ("racy git"). Neither is remembered.
  if (statKey(after, path) !== statKey(before, path) || Date.now() - after.mtimeMs < RACY_MS) return digest;
  // Remembering is an optimisation: a read-only cache must not fail the caller.
  const temporary = `${memo}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await mkdir(memoDir, { recursive: true })
    .then(() => writeFile(temporary, digest))
    .then(() => rename(temporary, memo))
    .catch(() => rm(temporary, { force: true }).catch(() => {}));
  return digest;
}
