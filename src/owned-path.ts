/**
 * Whether a file or directory can be trusted as gvmi-test's own: what we read back from the cache
 * (saved VM states handed to QEMU, memos that pick a snapshot or the seccomp sandbox) must not be
 * something another local user could have planted or can still change. The rule is OpenSSH's
 * StrictModes: the thing itself is ours (uid === our uid) and not writable by group or others;
 * each directory above it belongs to us or root and is not writable by group or others unless
 * sticky (as /tmp: there nobody can rename or delete what is not theirs).
 */
import type { Stats } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

function ourUid(): number {
  return process.getuid?.() ?? -1;
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;

export interface Untrusted {
  /** What is wrong, naming the path. */
  reason: string;
  /** The command that makes it right. */
  fix: string;
}

/** Why `st` (of `path`) is not ours alone, or undefined when it is. */
export function notOurs(path: string, st: Stats): Untrusted | undefined {
  if (st.isSymbolicLink()) return { reason: `${path} is a symlink`, fix: `rm ${path}` };
  if (st.uid !== ourUid()) return { reason: `${path} is owned by uid ${st.uid}, not by us (uid ${ourUid()})`, fix: `chown ${ourUid()} ${path}` };
  if ((st.mode & GROUP_OR_OTHER_WRITE) !== 0) return { reason: `${path} is writable by group or others (mode ${octal(st.mode)})`, fix: `chmod go-w ${path}` };
  return undefined;
}

function unsafeAncestor(path: string, st: Stats): Untrusted | undefined {
  if (st.uid !== 0 && st.uid !== ourUid()) {
    return { reason: `${path}, above it, is owned by uid ${st.uid}, neither root nor us`, fix: 'use a directory whose every parent belongs to you or root' };
  }
  if ((st.mode & GROUP_OR_OTHER_WRITE) !== 0 && (st.mode & STICKY) === 0) {
    return { reason: `${path}, above it, is writable by group or others (mode ${octal(st.mode)}, not sticky)`, fix: `chmod go-w ${path}` };
  }
  return undefined;
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/**
 * Why directory `dir` cannot be trusted, or undefined. A directory that does not exist yet is
 * judged by the existing directories above it (it will be created by us, 0700). Both the path as
 * given and its real path are walked up to /: a symlink on the way is only as safe as the
 * directory holding it, and the directories it leads to must be safe too.
 */
export async function untrustedDirectory(dir: string): Promise<Untrusted | undefined> {
  const given = resolve(dir);
  let existing = given;
  while (!(await lstatOrUndefined(existing)) && existing !== dirname(existing)) existing = dirname(existing);
  const real = await realpath(existing).catch(() => undefined);
  if (real === undefined) return { reason: `${existing} cannot be resolved (a dangling symlink?)`, fix: `rm ${existing}` };
  if (existing === given) {
    // Not a directory: nothing can be read from it (creating files there fails on its own).
    const self = await lstat(real);
    const reason = self.isDirectory() ? notOurs(given, self) : undefined;
    if (reason) return reason;
  }
  const seen = new Set<string>();
  for (const start of [dirname(given), existing === given ? dirname(real) : real]) {
    for (let path = start; ; path = dirname(path)) {
      if (!seen.has(path)) {
        seen.add(path);
        const st = await lstatOrUndefined(path);
        // A symlink's own mode means nothing; the directory holding it is checked next.
        const reason = st && !st.isSymbolicLink() ? unsafeAncestor(path, st) : undefined;
        if (reason) return reason;
      }
      if (path === dirname(path)) break;
    }
  }
  return undefined;
}
