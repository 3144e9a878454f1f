/**
 * Engine images converted to .gvmi for `run`/`inspect IMAGE[:TAG]`, remembered under
 * $GVMI_TEST_CACHE/images by the engine's image id: the same image converts once; a rebuilt
 * image (a new id) converts again. One `<key>.gvmi` and a `<key>.json` note (what it came from)
 * per image; a hit marks the file used, and the least recently used are removed past a budget
 * (GVMI_TEST_IMAGE_CACHE_MIB, default 2 GiB), as snapshots are.
 *
 * A cached image is booted without asking, so the directory must be ours alone, as the snapshot
 * directory must (owned-path.ts): else setup.unsafe-cache-dir. An image file in it that is not
 * ours alone is not used, and the next conversion replaces it.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir } from '../cache-dir.js';
import { GvmiTestError } from '../errors.js';
import { budgetBytesFromEnv, entriesOverBudget } from '../lru-budget.js';
import { notOurs, untrustedDirectory } from '../owned-path.js';
import type { EngineName } from './image-reference.js';

/** Bumped when a conversion of the same image would give a different .gvmi. */
const CONVERSION_FORMAT = 1;
const DEFAULT_BUDGET_MIB = 2048;
const STALE_TEMPORARY_MS = 3600 * 1000;

export function convertedImagesDir(): string {
  return join(cacheDir(), 'images');
}

export function convertedImageKey(engine: EngineName, imageId: string): string {
  return createHash('sha256').update(JSON.stringify({ format: CONVERSION_FORMAT, engine, imageId })).digest('hex').slice(0, 32);
}

export function convertedImagePath(key: string): string {
  return join(convertedImagesDir(), `${key}.gvmi`);
}

/** Throws setup.unsafe-cache-dir unless the directory (made or to be made) is ours alone. */
export async function assertConvertedImagesDirTrusted(): Promise<void> {
  const dir = convertedImagesDir();
  const untrusted = await untrustedDirectory(dir);
  if (!untrusted) return;
  throw new GvmiTestError('setup.unsafe-cache-dir', `refusing the converted-image cache ${dir}: ${untrusted.reason}, so another local user could plant an image there`, {
    hint: `${untrusted.fix}; or set GVMI_TEST_CACHE to a directory of your own`,
    details: { dir, reason: untrusted.reason },
  });
}

/** The converted image for `key`, if there is one of ours; marks it used (for pruning). */
export async function findConvertedImage(key: string): Promise<string | undefined> {
  await assertConvertedImagesDirTrusted();
  const path = convertedImagePath(key);
  const st = await lstat(path).catch(() => undefined);
  if (!st || !st.isFile() || st.size === 0 || notOurs(path, st)) return undefined;
  const now = new Date();
  await utimes(path, now, now).catch(() => {});
  return path;
}

/** Where to convert `key` to: the directory made (0700) and checked; the caller writes the path. */
export async function prepareConvertedImage(key: string): Promise<string> {
  await mkdir(convertedImagesDir(), { recursive: true, mode: 0o700 });
  await assertConvertedImagesDirTrusted();
  const path = convertedImagePath(key);
  // Not ours alone (a link, another owner): removed, so the conversion's rename replaces it.
  const st = await lstat(path).catch(() => undefined);
  if (st && notOurs(path, st)) await rm(path, { force: true });
  return path;
}

/** A note beside a converted image: what it was converted from, for `gvmi-test cache`. */
export async function describeConvertedImage(key: string, description: Record<string, unknown>): Promise<void> {
  await writeFile(join(convertedImagesDir(), `${key}.json`), `${JSON.stringify(description, null, 2)}\n`, { mode: 0o600 }).catch(() => {});
}

export function convertedImagesBudgetBytes(): number {
  return budgetBytesFromEnv('GVMI_TEST_IMAGE_CACHE_MIB', DEFAULT_BUDGET_MIB);
}

export interface ConvertedImage {
  key: string;
  path: string;
  bytes: number;
  lastUsed: Date;
}

export async function listConvertedImages(): Promise<ConvertedImage[]> {
  const dir = convertedImagesDir();
  const names = await readdir(dir).catch(() => [] as string[]);
  const found = await Promise.all(names.filter((n) => n.endsWith('.gvmi') && !n.startsWith('.')).map(async (name) => {
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    return st ? { key: name.slice(0, -'.gvmi'.length), path, bytes: st.size, lastUsed: st.mtime } : undefined;
  }));
  return found.filter((s) => s !== undefined).sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
}

/**
 * Removes the least recently used converted images until the rest fit in the budget (never
 * `keep`: the one just made or used), notes without an image, and conversions a killed process
 * left half-written. Returns the keys removed.
 */
export async function pruneConvertedImages(budgetBytes = convertedImagesBudgetBytes(), keep?: string): Promise<string[]> {
  const dir = convertedImagesDir();
  // Names listed from a directory another user controls could lead the removals anywhere.
  if (await untrustedDirectory(dir)) return [];
  const images = await listConvertedImages();
  const removed: string[] = [];
  for (const image of entriesOverBudget(images, budgetBytes, keep)) {
    await rm(image.path, { force: true });
    await rm(join(dir, `${image.key}.json`), { force: true });
    removed.push(image.key);
  }
  const kept = new Set(images.map((i) => i.key).filter((k) => !removed.includes(k)));
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    // build-image.ts writes `.<name>.partial-<random>` beside its output, then renames it.
    const leftover = name.includes('.partial-') || (name.endsWith('.json') && !kept.has(name.slice(0, -'.json'.length)));
    if (!leftover) continue;
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st && (name.endsWith('.json') || Date.now() - st.mtimeMs > STALE_TEMPORARY_MS)) await rm(join(dir, name), { force: true });
  }
  return removed;
}
