/**
 * `gvmi-test cache`: the inventory of a cache laid out as runtime/build.sh, the snapshot store,
 * the memos, the converted-image store and make-image.sh lay it out, and what prune and clear
 * remove from it — in a temporary GVMI_TEST_CACHE, never the user's.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheInventory, type CacheInventory } from '../../../src/cache/cache-inventory.js';
import { clearCache, pruneCache } from '../../../src/cache/cache-cleanup.js';
import { runCli } from '../../../src/cli/program.js';
import { pruneConvertedImages } from '../../../src/image/converted-images.js';
import { capture } from '../../helpers/capture-io.js';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
let cache: string;
const saved = { cache: process.env['GVMI_TEST_CACHE'], snapshots: process.env['GVMI_TEST_SNAPSHOT_DIR'], budget: process.env['GVMI_TEST_IMAGE_CACHE_MIB'] };

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** A file of `bytes` bytes at `rel` under the cache, last modified `ageMs` ago. */
async function put(rel: string, bytes: number, ageMs = 0): Promise<string> {
  const path = join(cache, rel);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, Buffer.alloc(bytes), { mode: 0o600 });
  const when = new Date(Date.now() - ageMs);
  await utimes(path, when, when);
  return path;
}

async function age(rel: string, ageMs: number): Promise<void> {
  const when = new Date(Date.now() - ageMs);
  await utimes(join(cache, rel), when, when);
}

/** The compressed copy of the current kernel (1000 zero bytes), and one of a kernel gone. */
const KERNEL_COPY = `runtime-packed/${createHash('sha256').update(Buffer.alloc(1000)).digest('hex')}.br`;
const OLD_COPY = `runtime-packed/${'6'.repeat(64)}.br`;

const names = (inventory: CacheInventory, cls: string): string[] => inventory.classes.find((c) => c.class === cls)!.entries.map((e) => e.name).sort();

let runtimePaths: string[];

beforeEach(async () => {
  cache = await mkdtemp(join(tmpdir(), 'gvmi-cache-cmd-'));
  process.env['GVMI_TEST_CACHE'] = cache;
  delete process.env['GVMI_TEST_SNAPSHOT_DIR'];
  delete process.env['GVMI_TEST_IMAGE_CACHE_MIB'];
  runtimePaths = [
    await put('kernel/aaaa/vmlinux', 1000, 3 * DAY),
    await put('runtime/1111/initramfs.cpio', 100, 3 * DAY),
    await put('runtime/host-2222/tsc-khz', 10, 3 * DAY),
  ];
  await age('kernel/aaaa', 3 * DAY);
  await put('kernel/bbbb/vmlinux', 2000, DAY);                 // an older build: not in use
  await put('kernel-build/cccc/.config', 5, 2 * HOUR);          // an interrupted build
  await put('kernel-build/dddd/.config', 5, 0);                 // a build going on now
  await put('runtime/3333/initramfs.cpio', 100, DAY);           // an older init
  await put('runtime/4444.tmp/initramfs.cpio', 1, 0);           // an init being built now
  await put('runtime-shipped/5555/vmlinux', 300, DAY);          // another package version's runtime
  // npm pack's compressed copies, named by the sha256 of what they compress: the current kernel's, an old one's.
  await put(KERNEL_COPY, 40, DAY);
  await put(OLD_COPY, 30, DAY);
  await put('snapshots/k1.state', 4000, 0);
  await writeFile(join(cache, 'snapshots/k1.json'), JSON.stringify({ image: '/work/app.gvmi' }), { mode: 0o600 });
  await put('digests/d1', 64, 0);
  await put('digests/d2', 64, 40 * DAY);
  await put('shadowed/s1', 10, 0);
  await put('host-tsc/t-old', 7, 40 * DAY);
  await put('host-tsc/t-new', 7, 0);
  await put('images/i1.gvmi', 500, 0);
  await writeFile(join(cache, 'images/i1.json'), JSON.stringify({ engine: 'podman', name: 'app:1', imageId: 'e'.repeat(64) }), { mode: 0o600 });
  await put('debian/old/seed-debian.docker.tar', 50, 10 * DAY);
  await put('debian/new/seed-debian.docker.tar', 60, DAY);
  await put('notes.txt', 3, 0);                                   // not gvmi-test's
  // A directory's own time counts as its entry's too: aged with its files.
  for (const [dir, ms] of [['kernel-build/cccc', 2 * HOUR], ['kernel/bbbb', DAY], ['runtime/3333', DAY], ['runtime-shipped/5555', DAY], ['debian/old', 10 * DAY], ['debian/new', DAY]] as const) await age(dir, ms);
});

afterEach(async () => {
  restore('GVMI_TEST_CACHE', saved.cache);
  restore('GVMI_TEST_SNAPSHOT_DIR', saved.snapshots);
  restore('GVMI_TEST_IMAGE_CACHE_MIB', saved.budget);
  await rm(cache, { recursive: true, force: true });
});

describe('cacheInventory', () => {
  it('sorts every entry into its class with its size, and marks what the current runtime uses', async () => {
    const inventory = await cacheInventory({ runtimePaths });
    expect(names(inventory, 'kernels')).toEqual(['kernel/aaaa', 'kernel/bbbb']);
    expect(names(inventory, 'kernel-builds')).toEqual(['kernel-build/cccc', 'kernel-build/dddd']);
    expect(names(inventory, 'runtimes')).toEqual([KERNEL_COPY, OLD_COPY, 'runtime-shipped/5555', 'runtime/1111', 'runtime/3333', 'runtime/4444.tmp', 'runtime/host-2222'].sort());
    expect(names(inventory, 'snapshots')).toEqual(['k1']);
    expect(names(inventory, 'digests')).toEqual(['digests/d1', 'digests/d2']);
    expect(names(inventory, 'memos')).toEqual(['host-tsc/t-new', 'host-tsc/t-old', 'shadowed/s1']);
    expect(names(inventory, 'images')).toEqual(['images/i1']);
    expect(names(inventory, 'debian-rootfs')).toEqual(['debian/new', 'debian/old']);
    expect(names(inventory, 'other')).toEqual(['notes.txt']);
    const entries = inventory.classes.flatMap((c) => c.entries);
    const entry = (name: string) => entries.find((e) => e.name === name)!;
    expect(entry('kernel/aaaa')).toMatchObject({ bytes: 1000, inUse: true });
    expect(entry('kernel/bbbb')).toMatchObject({ bytes: 2000, inUse: false });
    expect(entry('runtime/host-2222').inUse).toBe(true);
    expect(entry('runtime-shipped/5555').inUse).toBe(false);
    expect(entry(KERNEL_COPY)).toMatchObject({ bytes: 40, inUse: true });
    expect(entry(OLD_COPY)).toMatchObject({ bytes: 30, inUse: false });
    expect(entry('k1').bytes).toBe(4000 + JSON.stringify({ image: '/work/app.gvmi' }).length);
    expect(entry('k1').note).toBe('of /work/app.gvmi');
    expect(entry('images/i1').note).toBe(`podman:app:1 (id ${'e'.repeat(12)})`);
    const kernels = inventory.classes.find((c) => c.class === 'kernels')!;
    expect(kernels).toMatchObject({ count: 2, bytes: 3000 });
    expect(inventory.bytes).toBe(inventory.classes.reduce((n, c) => n + c.bytes, 0));
  });

  it('is empty for a cache that does not exist yet', async () => {
    process.env['GVMI_TEST_CACHE'] = join(cache, 'not-yet');
    const inventory = await cacheInventory();
    expect(inventory.bytes).toBe(0);
    expect(inventory.classes.every((c) => c.count === 0)).toBe(true);
  });
});

describe('pruneCache', () => {
  it('removes old kernels and runtimes, stale builds, old memos and older Debian rootfs; keeps what is in use, going on, or within budget', async () => {
    const result = await pruneCache(runtimePaths);
    const after = result.after;
    expect(names(after, 'kernels')).toEqual(['kernel/aaaa']);
    expect(names(after, 'kernel-builds')).toEqual(['kernel-build/dddd']);
    expect(names(after, 'runtimes')).toEqual([KERNEL_COPY, 'runtime/1111', 'runtime/4444.tmp', 'runtime/host-2222'].sort());
    expect(names(after, 'snapshots')).toEqual(['k1']);                 // within its 2 GiB budget
    expect(names(after, 'digests')).toEqual(['digests/d1']);           // 30-day-old memo gone
    expect(names(after, 'memos')).toEqual(['host-tsc/t-new', 'shadowed/s1']);
    expect(names(after, 'images')).toEqual(['images/i1']);             // within its budget
    expect(names(after, 'debian-rootfs')).toEqual(['debian/new']);
    expect(names(after, 'other')).toEqual(['notes.txt']);
    expect(result.removed.map((e) => e.name).sort()).toEqual([
      'debian/old', 'digests/d2', 'host-tsc/t-old', 'kernel-build/cccc', 'kernel/bbbb', OLD_COPY, 'runtime-shipped/5555', 'runtime/3333',
    ].sort());
    expect(result.bytesFreed).toBe(2000 + 5 + 100 + 300 + 30 + 64 + 7 + 50);
    expect(result.notes).toEqual([]);
  });

  it('keeps every kernel and runtime when the current runtime is not known, and says why', async () => {
    const result = await pruneCache(undefined);
    expect(names(result.after, 'kernels')).toEqual(['kernel/aaaa', 'kernel/bbbb']);
    expect(names(result.after, 'runtimes')).toEqual([KERNEL_COPY, OLD_COPY, 'runtime-shipped/5555', 'runtime/1111', 'runtime/3333', 'runtime/4444.tmp', 'runtime/host-2222'].sort());
    expect(result.notes.join(' ')).toMatch(/current runtime was not found/);
  });

  it('removes converted images past their budget, least recently used first', async () => {
    await put('images/i2.gvmi', 500, 2 * DAY);
    await put('images/i3.gvmi', 500, DAY);
    process.env['GVMI_TEST_IMAGE_CACHE_MIB'] = String(1200 / 1024 / 1024); // room for two
    const result = await pruneCache(runtimePaths);
    expect(names(result.after, 'images')).toEqual(['images/i1', 'images/i3']);
    // the one just converted is kept even past the budget
    process.env['GVMI_TEST_IMAGE_CACHE_MIB'] = '0';
    expect(await pruneConvertedImages(undefined, 'i3')).toEqual(['i1']);
    expect((await readdir(join(cache, 'images'))).sort()).toEqual(['i3.gvmi']);
  });
});

describe('clearCache', () => {
  it('removes every entry gvmi-test made and nothing else', async () => {
    const result = await clearCache();
    expect(result.after.classes.filter((c) => c.class !== 'other').every((c) => c.count === 0)).toBe(true);
    expect(names(result.after, 'other')).toEqual(['notes.txt']);
    expect(result.removed).toHaveLength(20);
  });
});

describe('gvmi-test cache', () => {
  it('lists classes and entries; --json has every entry', async () => {
    const text = capture();
    expect(await runCli(['cache'], text.io)).toBe(0);
    expect(text.out()).toContain(`${cache}: `);
    expect(text.out()).toMatch(/^ {2}kernels +2\.9 KiB {2}2 entries: guest kernels/m);
    expect(text.out()).toMatch(/^ {4}images\/i1 {2}\d+ B {2}\(podman:app:1 \(id e{12}\), last used/m);
    expect(text.out()).toMatch(/^ {2}digests .*2 entries/m);
    expect(text.out()).not.toContain('digests/d1'); // counted, not listed
    const json = capture();
    expect(await runCli(['cache', '--json'], json.io)).toBe(0);
    const parsed = JSON.parse(json.out()) as { dir: string; classes: { class: string; count: number; entries: { name: string }[] }[] };
    expect(parsed.dir).toBe(cache);
    expect(parsed.classes.find((c) => c.class === 'digests')!.entries.map((e) => e.name).sort()).toEqual(['digests/d1', 'digests/d2']);
  });

  it('clear asks on a terminal and removes nothing unless told yes', async () => {
    const stdin = Object.assign(new PassThrough(), { isTTY: true });
    const asked = capture(stdin);
    const status = runCli(['cache', 'clear'], asked.io);
    stdin.end('n\n');
    expect(await status).toBe(0);
    expect(asked.err()).toMatch(/remove 20 cache entries .* \[y\/N\]/);
    expect(asked.err()).toContain('nothing removed');
    expect(names(await cacheInventory(), 'kernels')).toHaveLength(2);

    const yesIn = Object.assign(new PassThrough(), { isTTY: true });
    const yes = capture(yesIn);
    const cleared = runCli(['cache', 'clear'], yes.io);
    yesIn.end('y\n');
    expect(await cleared).toBe(0);
    expect(yes.out()).toMatch(/^cleared 20 entries/);
    expect(names(await cacheInventory(), 'kernels')).toEqual([]);
  });

  it('clear without a terminal needs --yes (usage, exit 2); with it, --json says what went', async () => {
    const refused = capture();
    expect(await runCli(['cache', 'clear'], refused.io)).toBe(2);
    expect(refused.err()).toContain('[usage]');
    expect(names(await cacheInventory(), 'kernels')).toHaveLength(2);
    const done = capture();
    expect(await runCli(['cache', 'clear', '--yes', '--json'], done.io)).toBe(0);
    const parsed = JSON.parse(done.out()) as { removed: unknown[]; bytesFreed: number };
    expect(parsed.removed).toHaveLength(20);
    expect(parsed.bytesFreed).toBeGreaterThan(7000);
  });

  it('an unknown action is a usage error', async () => {
    const c = capture();
    expect(await runCli(['cache', 'purge'], c.io)).toBe(2);
    expect(c.err()).toMatch(/cache purge: choose one of list, prune, clear \[usage\]/);
  });

  it('a cache directory another user could write to is refused (setup.unsafe-cache-dir, exit 69)', async () => {
    const { chmod } = await import('node:fs/promises');
    await chmod(cache, 0o777);
    const c = capture();
    expect(await runCli(['cache', 'prune', '--json'], c.io)).toBe(69);
    expect(JSON.parse(c.out()).error.code).toBe('setup.unsafe-cache-dir');
    expect(names(await cacheInventory(), 'kernels')).toHaveLength(2);
  });
});
