/** The file tree inside a squashfs (or .gvmi), read with the real unsquashfs. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
const ARROW = ' -> ';

/**
 * Which listing produced a remembered answer (vm/shadowed-paths.ts): bumped when the listing
 * finds what an older one missed, so answers it gave are not reused. 2: names with \n and \r.
 */
export const LISTING_VERSION = 2;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Parses `unsquashfs -lln -d ROOT` output: "drwxr-xr-x 0/0   24 2026-11-22 05:22 ROOT/d", one entry
 * per line — except that unsquashfs prints names raw, and a name may hold any byte but "/" and NUL,
 * "\n" and "\r" included. Reading line by line lost such files (and a file under a volume named
 * "x\ny" went unreported as shadowed), and a crafted name could forge entries. So an entry starts
 * only where a header is followed by ROOT — a random prefix chosen per listing, which no name in
 * the image can contain — and its name runs up to the next entry. The output is read as latin1
 * (one char per byte) so that lengths are byte counts; paths are decoded as UTF-8 at the end.
 */
export function parseListing(output: Buffer, root: string): SquashfsEntry[] {
  const text = output.toString('latin1');
  const header = new RegExp(`(?:^|\n)([-dlcbps])([-rwxsStT]{9}) (\\d+)/(\\d+) +(\\d+|\\d+, *\\d+) \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d ${escapeRegExp(root)}(?=/|\n|$)`, 'g');
  const starts = [...text.matchAll(header)];
  const end = text.endsWith('\n') ? text.length - 1 : text.length;
  const entries: SquashfsEntry[] = [];
  for (const [i, m] of starts.entries()) {
    const type = TYPES[m[1]!]!;
    const sizeField = m[5]!;
    const size = sizeField.includes(',') ? 0 : Number(sizeField);
    let rest = text.slice(m.index + m[0].length, starts[i + 1]?.index ?? end);
    let linkTarget: string | undefined;
    if (type === 'symlink') {
      // The size of a symlink is its target's length: split there, as the name or the target may
      // contain " -> " themselves.
      if (size <= rest.length - ARROW.length && rest.slice(rest.length - size - ARROW.length, rest.length - size) === ARROW) {
        linkTarget = rest.slice(rest.length - size);
        rest = rest.slice(0, rest.length - size - ARROW.length);
      } else {
        const arrow = rest.indexOf(ARROW);
        if (arrow >= 0) {
          linkTarget = rest.slice(arrow + ARROW.length);
          rest = rest.slice(0, arrow);
        }
      }
    }
    entries.push({
      path: Buffer.from(rest, 'latin1').toString('utf8') || '/',
      type,
      mode: m[1]! + m[2]!,
      uid: Number(m[3]),
      gid: Number(m[4]),
      size,
      ...(linkTarget !== undefined ? { linkTarget: Buffer.from(linkTarget, 'latin1').toString('utf8') } : {}),
    });
  }
  return entries;
}

export async function listSquashfs(imagePath: string): Promise<SquashfsEntry[]> {
  const root = `gvmi-root-${randomBytes(16).toString('hex')}`;
  // execFile, not execa: this runs on every VM start, and execa's load time is not free.
  try {
    const { stdout } = await promisify(execFile)('unsquashfs', ['-lln', '-d', root, imagePath], { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 });
    return parseListing(stdout, root);
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: Buffer | string };
    if (e.code === 'ENOENT') {
      throw new GvmiTestError('setup.tool-missing', 'unsquashfs not found', { hint: 'install squashfs-tools (make deps)' });
    }
    throw new GvmiTestError('image.unreadable', `unsquashfs could not list ${imagePath}: ${String(e.stderr ?? e.message).trim()}`);
  }
}
