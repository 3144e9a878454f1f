/**
 * Builds the tiny busybox .gvmi once per test run and hands its path to every test file
 * (vitest provide/inject).
 *
 * The built image is kept in the cache, by a hash of everything its bytes come from (the builder's
 * sources, this file, the rootfs helper, the busybox binary, mksquashfs's version), and each run
 * gets its own copy of it. `gvmi-test build` gives a directory image a random id, so a fresh build
 * is a new image every run: every VM configuration of the suite then cold-boots and saves a
 * snapshot, where a second run with nothing changed should restore, as a user's second run does.
 * Any change to what the image is made from builds it again.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { cacheDir } from '../src/cache-dir.js';
import { buildImage } from '../src/image/build-image.js';
import { BUSYBOX, makeBusyboxRootfs, TINY_IMAGE_SETTINGS } from './helpers/busybox-rootfs.js';

declare module 'vitest' {
  export interface ProvidedContext {
    tinyImage: string;
    tinyRootfs: string;
  }
}

const CHECKOUT = resolve(import.meta.dirname, '..');

/** What the tiny image's bytes depend on, hashed. */
async function tinyImageKey(): Promise<string> {
  const hash = createHash('sha256');
  const imageSources = (await readdir(join(CHECKOUT, 'src/image'), { recursive: true })).filter((f) => f.endsWith('.ts')).sort();
  for (const file of [...imageSources.map((f) => join('src/image', f)), 'test/global-setup.ts', 'test/helpers/busybox-rootfs.ts']) {
    hash.update(`${file}\0`).update(await readFile(join(CHECKOUT, file))).update('\0');
  }
  hash.update(await readFile(BUSYBOX));
  hash.update(execFileSync('mksquashfs', ['-version'], { encoding: 'utf8' }));
  hash.update(JSON.stringify(TINY_IMAGE_SETTINGS));
  return hash.digest('hex').slice(0, 32);
}

/** The cached tiny image, built first when there is none for this key. */
async function cachedTinyImage(rootfs: string, scratch: string): Promise<string> {
  const dir = join(cacheDir(), 'test-fixtures');
  const cached = join(dir, `tiny-${await tinyImageKey()}.gvmi`);
  if (await stat(cached).then((st) => st.isFile(), () => false)) return cached;
  const built = join(scratch, 'built.gvmi');
  await buildImage({ source: rootfs, output: built, ...TINY_IMAGE_SETTINGS });
  await mkdir(dir, { recursive: true });
  // Another run may build the same key at the same time: each renames a whole file into place.
  const partial = join(dir, `.tiny-${process.pid}.partial`);
  await copyFile(built, partial);
  await rename(partial, cached);
  await rm(built);
  return cached;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'gvmi-test-fixtures-'));
  const rootfs = join(dir, 'rootfs');
  await makeBusyboxRootfs(rootfs);
  const image = join(dir, 'tiny.gvmi');
  // A copy of the run's own: nothing a test does to its file reaches the cache.
  await copyFile(await cachedTinyImage(rootfs, dir), image);
  project.provide('tinyImage', image);
  project.provide('tinyRootfs', rootfs);
  return async () => {
    await rm(dir, { recursive: true, force: true });
  };
}
