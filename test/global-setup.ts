/**
 * Builds the tiny busybox .gvmi once per test run and hands its path to every test file
 * (vitest provide/inject).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildImage } from '../src/image/build-image.js';
import { makeBusyboxRootfs, TINY_IMAGE_SETTINGS } from './helpers/busybox-rootfs.js';

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
  const image = join(dir, 'tiny.gvmi');
  await buildImage({ source: rootfs, output: image, ...TINY_IMAGE_SETTINGS });
  project.provide('tinyImage', image);
  project.provide('tinyRootfs', rootfs);
  return async () => {
    await rm(dir, { recursive: true, force: true });
  };
}
