/**
 * What gvmi-test keeps under its cache directory (src/cache-dir.ts), class by class, with sizes:
 * what `gvmi-test cache` lists and what `cache prune` / `cache clear` act on (cache-cleanup.ts).
 *
 * Each class is one or more top-level directories whose writers are elsewhere: kernels and their
 * build scratch (runtime/kernel/build.sh), inits and host tools (runtime/build.sh), runtimes a
 * package ships, unpacked (src/qemu/shipped-runtime.ts), the compressed copies `npm pack` keeps
 * (scripts/stage-runtime.ts: `runtime-packed/<sha256>.br`), snapshots (src/snapshot/snapshot-store.ts,
 * which GVMI_TEST_SNAPSHOT_DIR may move), memos (src/memo.ts: image digests and the rest),
 * converted engine images (src/image/converted-images.ts) and the Debian test root filesystem
 * (examples/seed-debian/make-image.sh). Anything else found there is listed as `other` and never
 * removed: GVMI_TEST_CACHE may point at a directory that holds more than gvmi-test's files.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { cacheDir } from '../cache-dir.js';
import { snapshotDir } from '../snapshot/snapshot-store.js';
import { findRuntime } from '../qemu/runtime-files.js';

export const CACHE_CLASSES = ['kernels', 'kernel-builds', 'runtimes', 'snapshots', 'digests', 'memos', 'images', 'debian-rootfs', 'other'] as const;
export type CacheClass = (typeof CACHE_CLASSES)[number];

export const CLASS_DESCRIPTIONS: Record<CacheClass, string> = {
  'kernels': 'guest kernels built by `make runtime`',
  'kernel-builds': 'kernel build trees (left by an interrupted build)',
  'runtimes': 'guest inits and host tools built by `make runtime`, runtimes a package ships, unpacked, and their compressed copies kept for `npm pack`',
  'snapshots': 'saved VM states (fast start)',
  'digests': 'remembered image digests',
  'memos': 'other remembered answers (shadowed paths, QEMU probes, TSC rates)',
  'images': 'container-engine images converted to .gvmi',
  'debian-rootfs': 'the Debian test root filesystem (examples/seed-debian)',
  'other': 'not gvmi-test\'s: listed, never removed',
};

/** Top-level directories of the cache and the class each belongs to. */
const CLASS_DIRECTORIES: Record<string, CacheClass> = {
  'kernel': 'kernels',
  'kernel-build': 'kernel-builds',
  'runtime': 'runtimes',
  'runtime-shipped': 'runtimes',
  'runtime-packed': 'runtimes',
  'snapshots': 'snapshots',
  'digests': 'digests',
  'shadowed': 'memos',
  'qemu-probes': 'memos',
  'host-tsc': 'memos',
  'images': 'images',
  'debian': 'debian-rootfs',
};

export interface CacheEntry {
  class: CacheClass;
  /** Relative to the cache directory (for a snapshot: to the snapshot directory). */
  name: string;
  /** The files or directories that make the entry (a snapshot: its state, its note). */
  paths: string[];
  bytes: number;
  /**
   * The newest modification time under it: for snapshots and converted images their last use
   * (each use marks them), for the rest when they were made.
   */
  modified: Date;
  /** The current runtime uses it (kernels, runtimes): prune keeps it. */
  inUse?: boolean;
  /** What it is, when a note says (a snapshot's image, a converted image's reference). */
  note?: string;
}

export interface CacheClassSummary {
  class: CacheClass;
  description: string;
  count: number;
  bytes: number;
  entries: CacheEntry[];
}

export interface CacheInventory {
  dir: string;
  snapshotDir: string;
  classes: CacheClassSummary[];
  bytes: number;
}

export interface InventoryOptions {
  /** The current runtime's files (kernel, initramfs, host tool): entries holding one are in use. */
  runtimePaths?: readonly string[];
}

/** Apparent size and newest mtime of a file or tree; symlinks are counted, never followed. */
async function measure(path: string): Promise<{ bytes: number; modified: number }> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return { bytes: 0, modified: 0 };
  // What it takes on disk: a snapshot's RAM file is sparse (512 MiB long, a few dozen written).
  let bytes = st.isDirectory() ? 0 : Math.min(st.size, st.blocks * 512);
  let modified = st.mtimeMs;
  if (st.isDirectory()) {
    for (const name of await readdir(path).catch(() => [] as string[])) {
      const inner = await measure(join(path, name));
      bytes += inner.bytes;
      modified = Math.max(modified, inner.modified);
    }
  }
  return { bytes, modified };
}

async function entryOf(cls: CacheClass, base: string, names: string[], note?: string): Promise<CacheEntry> {
  const paths = names.map((n) => join(base, n));
  let bytes = 0;
  let modified = 0;
  for (const path of paths) {
    const m = await measure(path);
    bytes += m.bytes;
    modified = Math.max(modified, m.modified);
  }
  return { class: cls, name: names[0]!, paths, bytes, modified: new Date(modified), ...(note ? { note } : {}) };
}

async function listNames(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

async function readNote(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as unknown;
    return parsed && typeof parsed === 'object' ? parsed as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

/** Snapshots by key: `<key>.state` with its RAM (`<key>.<n>.ram`) and `<key>.json` note; leftovers (`.tmp`) on their own. */
async function snapshotEntries(dir: string): Promise<CacheEntry[]> {
  const names = await listNames(dir);
  const entries: CacheEntry[] = [];
  const grouped = new Set<string>();
  for (const name of names.filter((n) => n.endsWith('.state'))) {
    const key = name.slice(0, -'.state'.length);
    const memory = names.filter((n) => n.startsWith(`${key}.`) && n.endsWith('.ram'));
    const files = [name, ...memory, ...(names.includes(`${key}.json`) ? [`${key}.json`] : [])];
    for (const f of files) grouped.add(f);
    const note = await readNote(join(dir, `${key}.json`));
    entries.push({ ...(await entryOf('snapshots', dir, files, typeof note?.['image'] === 'string' ? `of ${note['image']}` : undefined)), name: key });
  }
  for (const name of names.filter((n) => !grouped.has(n))) entries.push(await entryOf('snapshots', dir, [name]));
  return entries;
}

/** Converted images by key: `<key>.gvmi` with its `<key>.json` note. */
async function imageEntries(cache: string): Promise<CacheEntry[]> {
  const dir = join(cache, 'images');
  const names = await listNames(dir);
  const entries: CacheEntry[] = [];
  const grouped = new Set<string>();
  for (const name of names.filter((n) => n.endsWith('.gvmi') && !n.startsWith('.'))) {
    const key = name.slice(0, -'.gvmi'.length);
    const files = [name, ...(names.includes(`${key}.json`) ? [`${key}.json`] : [])];
    for (const f of files) grouped.add(f);
    const note = await readNote(join(dir, `${key}.json`));
    const from = note && typeof note['engine'] === 'string' && typeof note['name'] === 'string'
      ? `${note['engine']}:${note['name']}${typeof note['imageId'] === 'string' ? ` (id ${note['imageId'].slice(0, 12)})` : ''}`
      : undefined;
    const entry = await entryOf('images', dir, files, from);
    entries.push({ ...entry, name: join('images', key) });
  }
  for (const name of names.filter((n) => !grouped.has(n))) entries.push({ ...(await entryOf('images', dir, [name])), name: join('images', name) });
  return entries;
}

const PACKED_COPY = /^runtime-packed\/([0-9a-f]{64})\.br$/;

/**
 * A compressed copy (`runtime-packed/<sha256>.br`) lives elsewhere than the file it compresses, so
 * it is in use when it is named by the sha256 of one of the current runtime's files: the next
 * `npm pack` reuses it. The files are hashed only when there are copies to judge.
 */
async function markPackedCopiesInUse(entries: CacheEntry[], runtimePaths: readonly string[]): Promise<void> {
  const copies = entries.filter((e) => PACKED_COPY.test(e.name));
  if (copies.length === 0) return;
  const digests = new Set<string>();
  for (const path of runtimePaths) {
    const bytes = await readFile(path).catch(() => undefined);
    if (bytes) digests.add(createHash('sha256').update(bytes).digest('hex'));
  }
  for (const copy of copies) copy.inUse = digests.has(PACKED_COPY.exec(copy.name)![1]!);
}

/** Whether `path` is `dir` or inside it. */
function within(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep));
}

export async function cacheInventory(options: InventoryOptions = {}): Promise<CacheInventory> {
  const dir = cacheDir();
  const snapshots = snapshotDir();
  const entries: CacheEntry[] = await snapshotEntries(snapshots);
  for (const top of await listNames(dir)) {
    const path = join(dir, top);
    // GVMI_TEST_SNAPSHOT_DIR may be inside the cache under another name: listed once, above.
    if (within(snapshots, path)) continue;
    const cls = CLASS_DIRECTORIES[top];
    if (cls === 'images') {
      entries.push(...await imageEntries(dir));
    } else if (cls !== undefined) {
      const st = await lstat(path);
      if (!st.isDirectory()) {
        entries.push(await entryOf(cls, dir, [top]));
        continue;
      }
      for (const name of await listNames(path)) entries.push({ ...(await entryOf(cls, path, [name])), name: join(top, name) });
    } else {
      entries.push(await entryOf('other', dir, [top]));
    }
  }
  const runtimePaths = options.runtimePaths ?? [];
  for (const e of entries) {
    if (e.class === 'kernels' || e.class === 'runtimes') e.inUse = runtimePaths.some((p) => e.paths.some((dirPath) => within(p, dirPath)));
  }
  await markPackedCopiesInUse(entries, runtimePaths);
  const classes = CACHE_CLASSES.map((cls) => {
    const of = entries.filter((e) => e.class === cls);
    return { class: cls, description: CLASS_DESCRIPTIONS[cls], count: of.length, bytes: of.reduce((n, e) => n + e.bytes, 0), entries: of };
  });
  return { dir, snapshotDir: snapshots, classes, bytes: classes.reduce((n, c) => n + c.bytes, 0) };
}

/**
 * The files of the runtime gvmi-test would boot now (kernel, initramfs, host tool): what prune
 * keeps. Undefined when there is none to be found (not built, a broken override).
 */
export async function currentRuntimePaths(): Promise<string[] | undefined> {
  try {
    const runtime = await findRuntime();
    return [runtime.kernel, runtime.initramfs, ...(runtime.tscKhzTool ? [runtime.tscKhzTool] : [])];
  } catch {
    return undefined;
  }
}
