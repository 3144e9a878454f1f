/**
 * `gvmi-test cache prune` and `cache clear`. Prune applies, once, what already runs after each
 * snapshot save and each image conversion, plus what nothing else removes:
 *   - snapshots past their budget, least recently used first, and old memos (pruneSnapshots);
 *   - converted images past their budget, least recently used first (pruneConvertedImages);
 *   - kernels, inits, host tools, unpacked shipped runtimes and compressed copies kept for
 *     `npm pack` that the current runtime does not use: a new `make runtime` or package version
 *     leaves the old ones behind for good (`make runtime` rebuilds any of them should an older
 *     checkout need it, and `npm pack` compresses again). When the current runtime
 *     cannot be found, none of them is removed: nothing says which one is current;
 *   - kernel build trees and runtime builds left half-done more than an hour ago;
 *   - TSC-rate memos older than 30 days (they are per host boot);
 *   - all but the newest Debian test root filesystem (make-image.sh makes a new one when it
 *     changes, and only the newest is ever used).
 * Clear removes every entry of every class but `other`. Neither follows a symlink.
 */
import { rm } from 'node:fs/promises';
import { cacheDir } from '../cache-dir.js';
import { GvmiTestError } from '../errors.js';
import { untrustedDirectory } from '../owned-path.js';
import { pruneConvertedImages } from '../image/converted-images.js';
import { pruneSnapshots, snapshotDir } from '../snapshot/snapshot-store.js';
import { cacheInventory, type CacheEntry, type CacheInventory, type InventoryOptions } from './cache-inventory.js';

const STALE_BUILD_MS = 3600 * 1000;
const MEMO_MAX_AGE_MS = 30 * 24 * 3600 * 1000;

export interface CleanupResult {
  removed: CacheEntry[];
  bytesFreed: number;
  /** What was left alone, and why, when a rule could not apply (no current runtime known). */
  notes: string[];
  after: CacheInventory;
}

/** Throws setup.unsafe-cache-dir unless the cache (and the snapshot directory) are ours alone. */
async function assertTrusted(): Promise<void> {
  for (const dir of [cacheDir(), snapshotDir()]) {
    const untrusted = await untrustedDirectory(dir);
    if (untrusted) {
      throw new GvmiTestError('setup.unsafe-cache-dir', `refusing to remove anything under ${dir}: ${untrusted.reason}, so what it lists could lead the removals elsewhere`, {
        hint: `${untrusted.fix}; or set GVMI_TEST_CACHE to a directory of your own`,
        details: { dir, reason: untrusted.reason },
      });
    }
  }
}

/** Removes entries; what could not be removed is thrown together at the end (cache.remove-failed). */
async function removeEntries(entries: readonly CacheEntry[], failures: string[]): Promise<void> {
  for (const entry of entries) {
    for (const path of entry.paths) {
      await rm(path, { recursive: true, force: true }).catch((error: NodeJS.ErrnoException) => {
        failures.push(`${path}: ${error.code ?? error.message}`);
      });
    }
  }
}

function keyOf(entry: CacheEntry): string {
  return `${entry.class}\0${entry.paths.join('\0')}`;
}

async function finish(before: CacheInventory, notes: string[], failures: string[], options: InventoryOptions): Promise<CleanupResult> {
  const after = await cacheInventory(options);
  const left = new Set(after.classes.flatMap((c) => c.entries).map(keyOf));
  const removed = before.classes.flatMap((c) => c.entries).filter((e) => !left.has(keyOf(e)));
  if (failures.length > 0) {
    throw new GvmiTestError('cache.remove-failed', `could not remove ${failures.length} cache ${failures.length === 1 ? 'entry' : 'entries'}: ${failures.slice(0, 3).join('; ')}${failures.length > 3 ? '; …' : ''}`, {
      hint: 'are they owned by another user (made through sudo)? remove them as that user',
      details: { failures, removed: removed.map((e) => e.name) },
    });
  }
  return { removed, bytesFreed: removed.reduce((n, e) => n + e.bytes, 0), notes, after };
}

/** Which entries prune removes by its own rules (snapshots, memos and images have theirs). */
export function entriesToPrune(inventory: CacheInventory, runtimeKnown: boolean, now = Date.now()): CacheEntry[] {
  const entries = inventory.classes.flatMap((c) => c.entries);
  const age = (e: CacheEntry): number => now - e.modified.getTime();
  const debian = entries.filter((e) => e.class === 'debian-rootfs').sort((a, b) => b.modified.getTime() - a.modified.getTime());
  return entries.filter((e) => {
    switch (e.class) {
      case 'kernels':
      case 'runtimes':
        // `<hash>.tmp`: a build in progress, or one killed long ago.
        if (e.name.endsWith('.tmp')) return age(e) > STALE_BUILD_MS;
        return runtimeKnown && !e.inUse;
      case 'kernel-builds':
        return age(e) > STALE_BUILD_MS;
      case 'memos':
        return e.name.startsWith('host-tsc/') && age(e) > MEMO_MAX_AGE_MS;
      case 'debian-rootfs':
        return e !== debian[0];
      default:
        return false;
    }
  });
}

/** `runtimePaths`: the current runtime's files; undefined when it cannot be found. */
export async function pruneCache(runtimePaths: readonly string[] | undefined): Promise<CleanupResult> {
  await assertTrusted();
  const options = runtimePaths ? { runtimePaths } : {};
  const before = await cacheInventory(options);
  const notes: string[] = [];
  if (!runtimePaths) notes.push('kernels and runtimes kept: the current runtime was not found, so nothing says which one is in use');
  const failures: string[] = [];
  const collect = (what: string) => (error: unknown): never[] => {
    failures.push(`${what}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    return [];
  };
  await pruneSnapshots().catch(collect('snapshots'));
  await pruneConvertedImages().catch(collect('converted images'));
  await removeEntries(entriesToPrune(before, runtimePaths !== undefined), failures);
  return finish(before, notes, failures, options);
}

/** Removes every entry of every class but `other`. */
export async function clearCache(): Promise<CleanupResult> {
  await assertTrusted();
  const before = await cacheInventory();
  const failures: string[] = [];
  await removeEntries(before.classes.filter((c) => c.class !== 'other').flatMap((c) => c.entries), failures);
  return finish(before, [], failures, {});
}
