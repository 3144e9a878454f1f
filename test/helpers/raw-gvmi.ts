/**
 * A .gvmi of exactly a directory's tree, without Docker's init layer that `gvmi-test build` adds
 * (as gvmkit-build's images have it): an image converted some other way, which may lack /proc,
 * /sys or /etc, or keep its own /etc/hosts. mksquashfs + the trailer, nothing else.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { containerConfigFor, type ImageSettings } from '../../src/image/build-image.js';
import { encodeTrailer } from '../../src/image/gvmi-file.js';
import { BUSYBOX } from './busybox-rootfs.js';

export async function rawGvmi(rootfs: string, output: string, settings: ImageSettings = {}): Promise<string> {
  execFileSync('mksquashfs', [rootfs, output, '-noappend', '-comp', 'lzo', '-quiet', '-no-progress', '-all-root']);
  await appendFile(output, encodeTrailer(containerConfigFor({}, settings, randomBytes(32).toString('hex'))));
  return output;
}

/** A root with /bin/busybox (and /bin/sh) plus the given directories. */
export async function minimalRootfs(root: string, dirs: readonly string[]): Promise<string> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(root, 'bin/busybox'));
  await copyFile(BUSYBOX, join(root, 'bin/sh'));
  for (const d of dirs) await mkdir(join(root, d), { recursive: true });
  return root;
}
