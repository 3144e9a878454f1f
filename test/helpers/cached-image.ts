/**
 * Test images kept between runs, by a hash of everything their bytes come from: the builder's
 * sources (src/image), mksquashfs's version, Node's, and what the caller names (its inputs).
 * `gvmi-test build` gives a directory image a random id and does not fix timestamps, so a fresh
 * build is a new image every run: every VM of it then boots cold and saves a snapshot again,
 * where a user's second run restores. Any change to what an image is made from builds it again.
 *
 * Each caller gets a copy of its own (`copyOfCachedImage`): nothing a test does to its file
 * reaches the cache.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cacheDir } from '../../src/cache-dir.js';
import { buildImage, type ImageSettings } from '../../src/image/build-image.js';
import { BUSYBOX, TINY_IMAGE_SETTINGS } from './busybox-rootfs.js';

const CHECKOUT = resolve(import.meta.dirname, '..', '..');
const UNUSED_MS = 7 * 24 * 3600 * 1000;

/** What every image's bytes depend on: the builder's code and tools. */
async function builderKey(): Promise<string> {
  const hash = createHash('sha256');
  const sources = (await readdir(join(CHECKOUT, 'src/image'), { recursive: true })).filter((f) => f.endsWith('.ts')).sort();
  for (const file of [...sources.map((f) => join('src/image', f)), 'test/helpers/cached-image.ts']) {
    hash.update(`${file}\0`).update(await readFile(join(CHECKOUT, file))).update('\0');
  }
  hash.update(execFileSync('mksquashfs', ['-version'], { encoding: 'utf8' }));
  hash.update(process.version);
  return hash.digest('hex');
}

/**
 * The cached image `name` for these inputs (strings, or buffers such as a file's bytes), built by
 * `build(output)` first when there is none. Versions of `name` unused for a week are removed (not
 * at once: a checkout with other sources may be using another version at the same time).
 */
export async function cachedImage(name: string, inputs: readonly (string | Buffer)[], build: (output: string) => Promise<void>): Promise<string> {
  const hash = createHash('sha256').update(await builderKey());
  for (const input of inputs) hash.update('\0').update(input);
  const dir = join(cacheDir(), 'test-fixtures');
  const cached = join(dir, `${name}-${hash.digest('hex').slice(0, 32)}.gvmi`);
  if (await stat(cached).then((st) => st.isFile(), () => false)) {
    const now = new Date();
    await utimes(cached, now, now).catch(() => {});
    return cached;
  }
  await mkdir(dir, { recursive: true });
  // Another run may build the same image at the same time: each renames a whole file into place.
  const partial = join(dir, `.${name}-${process.pid}-${Date.now()}.partial`);
  try {
    await build(partial);
    for (const old of await readdir(dir)) {
      if (!old.startsWith(`${name}-`) || !old.endsWith('.gvmi')) continue;
      const st = await stat(join(dir, old)).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > UNUSED_MS) await rm(join(dir, old), { force: true });
    }
    await rename(partial, cached);
  } finally {
    await rm(partial, { force: true });
  }
  return cached;
}

/** `cachedImage`, copied to `output`. */
export async function copyOfCachedImage(output: string, name: string, inputs: readonly (string | Buffer)[], build: (output: string) => Promise<void>): Promise<string> {
  await copyFile(await cachedImage(name, inputs, build), output);
  return output;
}

/**
 * The tiny image (`rootfs` made by makeBusyboxRootfs, as global-setup's), built with `settings`
 * (TINY_IMAGE_SETTINGS by default), copied to `output`.
 */
export async function copyOfTinyImage(output: string, rootfs: string, settings: ImageSettings = TINY_IMAGE_SETTINGS): Promise<string> {
  const inputs = [
    await readFile(join(import.meta.dirname, 'busybox-rootfs.ts')),
    await readFile(BUSYBOX),
    JSON.stringify(settings),
  ];
  return copyOfCachedImage(output, 'tiny', inputs, async (partial) => {
    await buildImage({ source: rootfs, output: partial, ...settings });
  });
}
