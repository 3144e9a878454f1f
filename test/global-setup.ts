/**
 * Builds the tiny busybox .gvmi once per test run and hands its path to every test file
 * (vitest provide/inject). The image is kept between runs by what it is made of
 * (helpers/cached-image.ts), so that a second run restores its VMs from snapshots.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { makeBusyboxRootfs } from './helpers/busybox-rootfs.js';
import { copyOfTinyImage } from './helpers/cached-image.js';

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
  const image = await copyOfTinyImage(join(dir, 'tiny.gvmi'), rootfs);
  project.provide('tinyImage', image);
  project.provide('tinyRootfs', rootfs);
  return async () => {
    await rm(dir, { recursive: true, force: true });
  };
}
