/**
 * Flattens container image layers into one root filesystem directory, as a container engine
 * would: layers in order, whiteouts (`.wh.<name>`) delete, opaque markers (`.wh..wh..opq`) hide
 * what lower layers had in a directory, hard links and symlinks kept.
 *
 * Ownership, modes and device nodes are not applied to the host tree (that would need root, and a
 * 0000 file would stop mksquashfs reading it): they are recorded and handed to mksquashfs as
 * pseudo-definitions, so the squashfs gets them exactly.
 */
import { link, lstat, mkdir, open, readdir, rm, symlink, unlink } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { GvmiTestError } from '../errors.js';
import type { ExpansionBudget } from './expansion-budget.js';
import { escapesRoot, resolveInRoot, ScopedPathError, splitPath } from './scoped-path.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

interface Attributes {
  mode: number;
  uid: number;
  gid: number;
}

interface SpecialFile extends Attributes {
  kind: 'c' | 'b' | 'fifo';
  major: number;
  minor: number;
}

/** Entry names are relative to the root; "./a/b", "/a/b" and "a/b" are the same path. */
export function normaliseEntryName(name: string): string {
  if (escapesRoot(name) || splitPath(name).includes('..')) {
    throw new GvmiTestError('build.path-escape', `layer entry ${JSON.stringify(name)} climbs out of the root filesystem`, {
      hint: 'the archive is malformed or hostile; it was not extracted',
    });
  }
  return splitPath(name).join('/');
}

/**
 * Writes an entry's body to a new file. The file is closed before this settles, success or not,
 * so a failed extraction leaves nothing being written behind it.
 */
export async function writeEntry(stream: EntryStream, path: string): Promise<void> {
  const handle = await open(path, 'w', 0o644);
  try {
    for await (const chunk of stream) await handle.write(chunk as Buffer);
  } finally {
    await handle.close();
  }
}

/** A tar entry's body (a streamx stream, iterable like a Node one). */
export type EntryStream = AsyncIterable<unknown> & { resume(): unknown; on(event: 'error', fn: () => void): unknown };

/** Pipes a Node stream into a tar extractor (a streamx stream) and waits for both. */
export async function feed(input: Readable, extract: tar.Extract, done: Promise<void>): Promise<void> {
  input.on('error', (error) => extract.destroy(error));
  input.pipe(extract as unknown as Writable);
  await done;
}

/**
 * A whiteout deletes one entry of its own directory. `.wh.`, `.wh..` and `.wh...` would name the
 * directory itself or its parent — for a whiteout at the top of a layer, the directory holding
 * the root filesystem — so they are refused rather than resolved.
 */
function checkWhiteoutTarget(name: string): void {
  const target = name.slice(name.lastIndexOf('/') + 1).slice(WHITEOUT_PREFIX.length);
  if (target === '' || target === '.' || target === '..') {
    throw new GvmiTestError('build.path-escape', `layer entry ${JSON.stringify(name)} is a whiteout of ${JSON.stringify(target)}, not of an entry in its directory`, {
      hint: 'the archive is malformed or hostile; it was not extracted',
    });
  }
}

function quote(path: string): string {
  return `"${path.replace(/(["\\])/g, '\\$1')}"`;
}

export class RootfsBuilder {
  private readonly attributes = new Map<string, Attributes>();
  private readonly specials = new Map<string, SpecialFile>();

  /** With a budget, what the layers expand to is counted and capped (see expansion-budget.ts). */
  constructor(readonly root: string, private readonly budget?: ExpansionBudget) {}

  /** Applies one layer: an uncompressed or gzip-compressed tar stream. */
  async applyLayer(input: Readable, layerName: string): Promise<void> {
    const extract = tar.extract();
    const touched = new Set<string>();
    let current = Promise.resolve();
    const done = new Promise<void>((resolve, reject) => {
      extract.on('entry', (header, stream, next) => {
        stream.on('error', () => {}); // surfaced through the extractor; never unhandled
        current = Promise.resolve().then(() => {
          // Before any of it is written: a header may declare 100 GiB.
          this.budget?.declare(header.size ?? 0, `layer ${layerName} entry ${JSON.stringify(header.name)}`);
          return this.applyEntry(header, stream, touched);
        }).then(
          () => next(),
          (error: unknown) => {
            stream.resume();
            extract.destroy(error instanceof Error ? error : new Error(String(error)));
          },
        );
      });
      extract.on('finish', resolve);
      extract.on('error', reject);
    });
    try {
      const tarStream = await decompressed(input, layerName);
      await feed(this.budget ? this.budget.meter(tarStream) : tarStream, extract, done);
    } catch (error) {
      // The entry being applied may be between two file-system calls: let it settle, so nothing
      // is created after the caller has removed the scratch directory.
      await current;
      input.destroy();
      if (error instanceof GvmiTestError) throw error;
      throw new GvmiTestError('build.bad-archive', `layer ${layerName} is not a readable tar: ${(error as Error).message}`, { cause: error });
    }
  }

  private relativeOf(absolute: string): string {
    return relative(this.root, absolute).split('\\').join('/');
  }

  private forget(rel: string): void {
    for (const map of [this.attributes, this.specials] as Map<string, unknown>[]) {
      for (const key of map.keys()) if (key === rel || key.startsWith(`${rel}/`)) map.delete(key);
    }
  }

  private async removeExisting(absolute: string, keepDirectory: boolean): Promise<void> {
    const st = await lstat(absolute).catch(() => undefined);
    if (!st) return;
    if (st.isDirectory()) {
      if (keepDirectory) return;
      await rm(absolute, { recursive: true, force: true });
    } else {
      await unlink(absolute);
    }
    this.forget(this.relativeOf(absolute));
  }

  private async applyEntry(header: tar.Header, stream: EntryStream, touched: Set<string>): Promise<void> {
    const name = normaliseEntryName(header.name);
    const parts = name === '' ? [] : name.split('/');
    const base = parts.pop() ?? '';
    if (base !== OPAQUE_MARKER && base.startsWith(WHITEOUT_PREFIX)) checkWhiteoutTarget(name);
    const parent = await this.scoped(parts.join('/'), true);
    await mkdir(parent, { recursive: true, mode: 0o755 });

    if (base === OPAQUE_MARKER) {
      stream.resume();
      for (const child of await readdir(parent).catch(() => [] as string[])) {
        const rel = this.relativeOf(join(parent, child));
        if (!touched.has(rel)) await this.removeExisting(join(parent, child), false);
      }
      for (const [rel] of this.specials) {
        if (dirname(rel) === this.relativeOf(parent) && !touched.has(rel)) this.specials.delete(rel);
      }
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      stream.resume();
      const target = join(parent, base.slice(WHITEOUT_PREFIX.length));
      await this.removeExisting(target, false);
      this.forget(this.relativeOf(target));
      return;
    }

    const absolute = base === '' ? this.root : join(parent, base);
    const rel = this.relativeOf(absolute);
    const attributes: Attributes = { mode: (header.mode ?? 0o644) & 0o7777, uid: header.uid ?? 0, gid: header.gid ?? 0 };
    touched.add(rel);
    switch (header.type) {
      case 'directory':
        stream.resume();
        await this.removeExisting(absolute, true);
        await mkdir(absolute, { recursive: true, mode: 0o755 });
        break;
      case 'file':
      case 'contiguous-file':
        await this.removeExisting(absolute, false);
        await writeEntry(stream, absolute);
        break;
      case 'symlink':
        stream.resume();
        await this.removeExisting(absolute, false);
        await symlink(header.linkname ?? '', absolute);
        break;
      case 'link': {
        stream.resume();
        const target = await this.scoped(normaliseEntryName(header.linkname ?? ''), false);
        await this.removeExisting(absolute, false);
        try {
          await link(target, absolute);
        } catch (cause) {
          throw new GvmiTestError('build.bad-archive', `hard link ${name} -> ${header.linkname}: target missing`, { cause });
        }
        // One inode, one set of attributes: the link's header must not override the target's.
        this.attributes.set(rel, this.attributes.get(this.relativeOf(target)) ?? attributes);
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo':
        stream.resume();
        await this.removeExisting(absolute, false);
        this.specials.set(rel, {
          ...attributes,
          kind: header.type === 'fifo' ? 'fifo' : header.type === 'block-device' ? 'b' : 'c',
          major: header.devmajor ?? 0,
          minor: header.devminor ?? 0,
        });
        return;
      default:
        stream.resume();
        return;
    }
    this.attributes.set(rel, attributes);
  }

  private async scoped(rel: string, followFinal: boolean): Promise<string> {
    try {
      return await resolveInRoot(this.root, rel, followFinal);
    } catch (error) {
      if (error instanceof ScopedPathError) throw new GvmiTestError('build.bad-archive', error.message);
      throw error;
    }
  }

  /** mksquashfs pseudo-definitions: every path's owner and mode, and the special files. */
  async pseudoDefinitions(): Promise<string> {
    const lines: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const absolute = join(dir, entry.name);
        const rel = this.relativeOf(absolute);
        const known = this.attributes.get(rel);
        const st = await lstat(absolute);
        const attrs = known ?? { mode: st.isDirectory() ? 0o755 : st.mode & 0o7777, uid: 0, gid: 0 };
        lines.push(`${quote(rel)} m ${attrs.mode.toString(8)} ${attrs.uid} ${attrs.gid}`);
        if (entry.isDirectory()) await walk(absolute);
      }
    };
    await walk(this.root);
    const root = this.attributes.get('') ?? { mode: 0o755, uid: 0, gid: 0 };
    lines.push(`/ m ${root.mode.toString(8)} ${root.uid} ${root.gid}`);
    for (const [rel, s] of this.specials) {
      const mode = s.mode.toString(8);
      lines.push(s.kind === 'fifo'
        ? `${quote(rel)} i ${mode} ${s.uid} ${s.gid} f`
        : `${quote(rel)} ${s.kind} ${mode} ${s.uid} ${s.gid} ${s.major} ${s.minor}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

async function decompressed(input: Readable, layerName: string): Promise<Readable> {
  const head: Buffer = await new Promise((resolve, reject) => {
    const onReadable = (): void => {
      const chunk = input.read(4) as Buffer | null;
      if (chunk === null) {
        if (input.readableEnded) resolve(Buffer.alloc(0));
        return;
      }
      input.off('readable', onReadable);
      input.unshift(chunk);
      resolve(chunk);
    };
    input.on('readable', onReadable);
    input.once('end', () => resolve(Buffer.alloc(0)));
    input.once('error', reject);
  });
  if (head[0] === 0x1f && head[1] === 0x8b) return input.pipe(createGunzip());
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) {
    throw new GvmiTestError('build.bad-archive', `layer ${layerName} is zstd-compressed, which this Node.js cannot decompress`, {
      hint: 'save the image with gzip or uncompressed layers (docker save does)',
    });
  }
  return input;
}

