/**
 * The SHA-256 of a .gvmi's bytes, remembered by (device, inode, size, mtime, ctime) as git's index
 * does: a snapshot must never be restored over a different image at the same path, yet hashing a
 * large image on every start would cost more than the snapshot saves.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { memoPath, readMemo, writeMemo } from '../memo.js';

const RACY_MS = 2000;

function statKey(st: { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }, path: string): unknown[] {
  return [path, st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs];
}

export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function imageDigest(path: string): Promise<string> {
  const before = await stat(path);
  const memo = memoPath('digests', statKey(before, path));
  const remembered = await readMemo(memo);
  if (remembered && /^[0-9a-f]{64}$/.test(remembered)) return remembered;
  const digest = await hashFile(path);
  const after = await stat(path);
  // Changed while being read: the digest describes neither version. Written in the last moments:
  // a rewrite within the same timestamp tick would go unseen ("racy git"). Neither is remembered.
  const unchanged = JSON.stringify(statKey(after, path)) === JSON.stringify(statKey(before, path));
  if (unchanged && Date.now() - after.mtimeMs >= RACY_MS) await writeMemo(memo, digest);
  return digest;
}
