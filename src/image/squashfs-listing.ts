/** The file tree inside a squashfs (or .gvmi), read with the real unsquashfs. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { GvmiTestError } from '../errors.js';

export interface SquashfsEntry {
  /** Absolute path inside the image, e.g. "/golem/input/data.txt". */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: string;
  uid: number;
  gid: number;
  size: number;
  linkTarget?: string;
}

const TYPES: Record<string, SquashfsEntry['type']> = {
  '-': 'file', d: 'dir', l: 'symlink', c: 'char', b: 'block', p: 'fifo', s: 'socket',
};
const ROOT_PREFIX = 'squashfs-root';

/** Parses `unsquashfs -lln` lines: "drwxr-xr-x 0/0   24 2026-11-22 05:22 squashfs-root/d". */
export function parseListing(output: string): SquashfsEntry[] {
  const entries: SquashfsEntry[] = [];
  const line = /^([-dlcbps])([-rwxsStT]{9}) (\d+)\/(\d+) +(\d+|\d+, *\d+) \d{4}-\d\d-\d\d \d\d:\d\d (.*)$/;
  for (const raw of output.split('\n')) {
    const m = line.exec(raw);
    if (!m) continue;
    const type = TYPES[m[1]!]!;
    let rest = m[6]!;
    let linkTarget: string | undefined;
    if (type === 'symlink') {
      const arrow = rest.indexOf(' -> ');
      if (arrow >= 0) {
        linkTarget = rest.slice(arrow + 4);
        rest = rest.slice(0, arrow);
      }
    }
    if (!rest.startsWith(ROOT_PREFIX)) continue;
    const path = rest.slice(ROOT_PREFIX.length) || '/';
    const sizeField = m[5]!;
    entries.push({
      path,
      type,
      mode: m[1]! + m[2]!,
      uid: Number(m[3]),
      gid: Number(m[4]),
      size: sizeField.includes(',') ? 0 : Number(sizeField),
      ...(linkTarget !== undefined ? { linkTarget } : {}),
    });
  }
  return entries;
}

export async function listSquashfs(imagePath: string): Promise<SquashfsEntry[]> {
  // execFile, not execa: this runs on every VM start, and execa's load time is not free.
  try {
    const { stdout } = await promisify(execFile)('unsquashfs', ['-lln', '-d', ROOT_PREFIX, imagePath], { maxBuffer: 512 * 1024 * 1024 });
    return parseListing(stdout);
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new GvmiTestError('setup.tool-missing', 'unsquashfs not found', { hint: 'install squashfs-tools (make deps)' });
    }
    throw new GvmiTestError('image.unreadable', `unsquashfs could not list ${imagePath}: ${String(e.stderr ?? e.message).trim()}`);
  }
}
