/**
 * Resolving a path inside a root directory the way the guest would (chroot semantics): symlinks
 * are followed but can never lead outside the root — an absolute target restarts at the root,
 * ".." stops at it. Used wherever the host touches a tree an image or guest controls: layer
 * extraction and volume transfers.
 */
import { lstat, readlink } from 'node:fs/promises';
import { join, sep } from 'node:path';

const MAX_SYMLINK_HOPS = 40;

export class ScopedPathError extends Error {
  constructor(message: string, readonly errno: 'ELOOP' | 'ENOTDIR') {
    super(message);
  }
}

export function splitPath(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/** True when a relative path climbs out of its root lexically ("../x", "a/../../x"). */
export function escapesRoot(path: string): boolean {
  let depth = 0;
  for (const c of splitPath(path)) {
    depth += c === '..' ? -1 : 1;
    if (depth < 0) return true;
  }
  return false;
}

/**
 * The host path of `path` inside `root`. With followFinal false the last component is left as is
 * when it is a symlink (for lstat, unlink, or creating a link there).
 */
export async function resolveInRoot(root: string, path: string, followFinal: boolean): Promise<string> {
  let pending = splitPath(path);
  let resolved: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const component = pending.shift()!;
    if (component === '..') {
      resolved.pop();
      continue;
    }
    const candidate = join(root, ...resolved, component);
    const isLast = pending.length === 0;
    let st;
    try {
      st = await lstat(candidate);
    } catch {
      resolved.push(component); // does not exist (yet): nothing below it can be a link
      continue;
    }
    if (st.isSymbolicLink() && (!isLast || followFinal)) {
      if (++hops > MAX_SYMLINK_HOPS) throw new ScopedPathError(`too many symlinks resolving ${path}`, 'ELOOP');
      const target = await readlink(candidate);
      if (target.startsWith('/')) resolved = [];
      pending = [...splitPath(target), ...pending];
      continue;
    }
    if (!isLast && !st.isDirectory()) throw new ScopedPathError(`${join(...resolved, component)} is not a directory`, 'ENOTDIR');
    resolved.push(component);
  }
  return resolved.length === 0 ? root : join(root, ...resolved);
}

/** True when `path` is `root` or below it (both absolute, normalised). */
export function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}
