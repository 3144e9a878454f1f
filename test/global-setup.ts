/**
 * Builds the tiny busybox .gvmi once per test run and hands its path to every test file
 * (vitest provide/inject). The image is kept between runs by what it is made of
 * (helpers/cached-image.ts), so that a second run restores its VMs from snapshots.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildImage } from '../src/image/build-image.js';
import { BUSYBOX, makeBusyboxRootfs, TINY_IMAGE_SETTINGS } from './helpers/busybox-rootfs.js';
import { copyOfCachedImage } from './helpers/cached-image.js';

declare module 'vitest' {
  export interface ProvidedContext {
    tinyImage: string;
    tinyRootfs: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'gvmi-test-fixtures-'));
  const rootfs = join(dir, 'rootfs');
  await makeBusyboxRootfs(rootfs);
  const inputs = [
    await readFile(join(import.meta.dirname, 'global-setup.ts')),
    await readFile(join(import.meta.dirname, 'helpers/busybox-rootfs.ts')),
    await readFile(BUSYBOX),
    JSON.stringify(TINY_IMAGE_SETTINGS),
  ];
  const image = await copyOfCachedImage(join(dir, 'tiny.gvmi'), 'tiny', inputs, (output) => buildImage({ source: rootfs, output, ...TINY_IMAGE_SETTINGS }).then(() => {}));
  project.provide('tinyImage', image);
  project.provide('tinyRootfs', rootfs);
  return async () => {
    await rm(dir, { recursive: true, force: true });
  };
}
