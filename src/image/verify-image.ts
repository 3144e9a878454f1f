/**
 * `inspect --verify`: reads every block of a .gvmi's squashfs, so that damage shows before a
 * provider runs it. Listing an image (inspect) reads only its tables: a .gvmi with damaged data
 * blocks lists, mounts and boots, and fails only when a command touches those blocks (a program
 * dies with SIGBUS; the console says `SQUASHFS error: lzo decompression failed`).
 *
 * The real unsquashfs does the reading: `-pf /dev/null` writes a pseudo-file definition of the
 * whole tree, every file's contents included, to nowhere — every data block and fragment is read
 * and decompressed, nothing is written to disk. unsquashfs older than 4.5 has no -pf; there the
 * image is extracted into a temporary directory instead.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GvmiTestError } from '../errors.js';

export interface Verification {
  /** How every block was read: a pseudo file to /dev/null, or an extraction (old unsquashfs). */
  method: 'pseudo-file' | 'extract';
  ms: number;
}

interface Outcome {
  exitCode: number;
  stderr: string;
  missing: boolean;
}

function unsquashfs(args: readonly string[], signal?: AbortSignal): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile('unsquashfs', args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, ...(signal ? { signal } : {}) }, (error, _stdout, stderr) => {
      const e = error as (NodeJS.ErrnoException & { code?: number | string }) | null;
      resolve({ exitCode: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stderr: String(stderr), missing: e?.code === 'ENOENT' });
    });
  });
}

/** The file unsquashfs could not read, from "FATAL ERROR: cat: failed to read/uncompress file //bin/x". */
export function damagedFileOf(stderr: string): string | undefined {
  const m = /failed to read(?:\/uncompress)? file (.+?)\s*$/m.exec(stderr);
  return m ? m[1]!.replace(/^\/+/, '/') : undefined;
}

function corrupt(path: string, stderr: string): GvmiTestError {
  const file = damagedFileOf(stderr);
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/^\[.*\]\s*\d+\/\d+\s+\d+%$/.test(l));
  const reason = lines.find((l) => /uncompress|decompress|corrupt|read/i.test(l) && !/^FATAL ERROR/.test(l)) ?? lines.at(-1) ?? 'unsquashfs failed';
  return new GvmiTestError('image.corrupt', `${path}: the squashfs is damaged: ${file ? `${file} cannot be read` : 'a block cannot be read'} (${reason})`, {
    hint: 'rebuild the image, or download it again and check its hash: a provider\'s VM fails the same way when a command reads it (a program dies with SIGBUS, a read fails with EIO)',
    details: { ...(file ? { file } : {}), unsquashfs: lines.slice(-10) },
  });
}

/** Reads and decompresses every block of the image; throws `image.corrupt` naming what failed. */
export async function verifyImage(path: string, options: { signal?: AbortSignal } = {}): Promise<Verification> {
  const started = performance.now();
  const pseudo = await unsquashfs(['-no-progress', '-pf', '/dev/null', path], options.signal);
  if (pseudo.missing) throw new GvmiTestError('setup.tool-missing', 'unsquashfs not found', { hint: 'install squashfs-tools (make deps)' });
  if (pseudo.exitCode === 0) return { method: 'pseudo-file', ms: Math.round(performance.now() - started) };
  if (!/invalid option|unrecognised option|unrecognized option|unknown option/i.test(pseudo.stderr)) throw corrupt(path, pseudo.stderr);

  // unsquashfs < 4.5: extract, and throw the tree away. Exit 2 is a non-fatal error (a device
  // node or an owner this user cannot make): every block was still read.
  const scratch = await mkdtemp(join(tmpdir(), 'gvmi-verify-'));
  try {
    const extract = await unsquashfs(['-no-progress', '-no-xattrs', '-d', join(scratch, 'root'), path], options.signal);
    if (extract.exitCode !== 0 && extract.exitCode !== 2) throw corrupt(path, extract.stderr);
    return { method: 'extract', ms: Math.round(performance.now() - started) };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
