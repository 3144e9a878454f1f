/**
 * A .gvmi of exactly a directory's tree, without Docker's init layer that `gvmi-test build` adds
 * (as gvmkit-build's images have it): an image converted some other way, which may lack /proc,
 * /sys or /etc, or keep its own /etc/hosts. mksquashfs + the trailer, nothing else.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, copyFile, lstat, mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { containerConfigFor, type ImageSettings } from '../../src/image/build-image.js';
import { encodeTrailer } from '../../src/image/gvmi-file.js';
import { BUSYBOX } from './busybox-rootfs.js';
import { copyOfCachedImage } from './cached-image.js';

export async function rawGvmi(rootfs: string, output: string, settings: ImageSettings = {}): Promise<string> {
  execFileSync('mksquashfs', [rootfs, output, '-noappend', '-comp', 'lzo', '-quiet', '-no-progress', '-all-root']);
  await appendFile(output, encodeTrailer(containerConfigFor({}, settings, randomBytes(32).toString('hex'))));
  return output;
}

/** Every entry of `root`: its path, mode, and content or link target (not its times). */
async function treeHash(root: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const path = join(root, rel);
    const st = await lstat(path);
    hash.update(`${rel}\0${st.mode}\0`);
    if (st.isSymbolicLink()) hash.update(await readlink(path));
    else if (st.isFile()) hash.update(await readFile(path));
    else if (st.isDirectory()) for (const name of (await readdir(path)).sort()) await walk(join(rel, name));
    hash.update('\0');
  };
  await walk('.');
  return hash.digest('hex');
}

/**
 * rawGvmi, kept between runs by the tree's content and the settings (helpers/cached-image.ts), so
 * that a bootable image's VMs restore on the next run.
 */
export async function cachedRawGvmi(rootfs: string, output: string, settings: ImageSettings = {}): Promise<string> {
  const inputs = [await treeHash(rootfs), JSON.stringify(settings), await readFile(import.meta.filename)];
  return copyOfCachedImage(output, 'raw', inputs, async (partial) => {
    await rawGvmi(rootfs, partial, settings);
  });
}

/** A root with /bin/busybox (and /bin/sh) plus the given directories. */
export async function minimalRootfs(root: string, dirs: readonly string[]): Promise<string> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(root, 'bin/busybox'));
  await copyFile(BUSYBOX, join(root, 'bin/sh'));
  for (const d of dirs) await mkdir(join(root, d), { recursive: true });
  return root;
}
