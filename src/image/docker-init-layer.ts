/**
 * Docker's init layer (moby `daemon/initlayer/setup_unix.go`), which every .gvmi made by
 * gvmkit-build carries: gvmkit-build 0.3 creates a container from the image and downloads its `/`
 * through Docker's archive API, and a container's root is the image's layers under this layer
 * (reference §1). gvmi-test build adds it too, so its images are the tree gvmkit-build gives.
 *
 * It matters on a provider: the init there mounts /proc and /sys without creating them, and
 * appends to /etc/hosts, so an image without /proc, /sys or /etc does not boot; through Docker
 * every image has them.
 *
 * Moby makes each entry in a fresh layer that sits above the image's: directories 0755 root:root
 * (merged with the image's directory of the same name, which takes the layer's owner and mode),
 * empty files 0755 root:root and one symlink, each hiding whatever the image had at that path.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import tar from 'tar-stream';

export interface InitLayerEntry {
  /** Relative to the root, parents listed before their children. */
  path: string;
  type: 'dir' | 'file' | 'symlink';
  target?: string;
}

/** The layer, parents first (moby creates parents 0755 root:root too). */
export const DOCKER_INIT_LAYER: readonly InitLayerEntry[] = [
  { path: 'dev', type: 'dir' },
  { path: 'dev/pts', type: 'dir' },
  { path: 'dev/shm', type: 'dir' },
  { path: 'dev/console', type: 'file' },
  { path: 'proc', type: 'dir' },
  { path: 'sys', type: 'dir' },
  { path: '.dockerenv', type: 'file' },
  { path: 'etc', type: 'dir' },
  { path: 'etc/resolv.conf', type: 'file' },
  { path: 'etc/hosts', type: 'file' },
  { path: 'etc/hostname', type: 'file' },
  { path: 'etc/mtab', type: 'symlink', target: '/proc/mounts' },
];

const MODE = 0o755;

/** The layer as a tar stream, to apply on top of an image's layers like any other. */
export function dockerInitLayerTar(mtime = new Date()): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of DOCKER_INIT_LAYER) {
    const common = { name: e.path, uid: 0, gid: 0, mtime };
    if (e.type === 'dir') pack.entry({ ...common, type: 'directory', mode: MODE });
    else if (e.type === 'file') pack.entry({ ...common, type: 'file', mode: MODE, size: 0 }, '');
    else pack.entry({ ...common, type: 'symlink', mode: 0o777, linkname: e.target! });
  }
  pack.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    pack.on('data', (c) => chunks.push(c as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
}

export interface InitLayerForDirectory {
  /** mksquashfs pseudo-definitions (-pf) that add or modify the layer's entries. */
  pseudo: string[];
  /** Source paths mksquashfs must leave out (-ef), because the layer hides them. */
  excludes: string[];
}

/**
 * The same layer over a source directory that must not be touched (a user's root filesystem):
 * as mksquashfs pseudo-definitions, with the entries the layer hides excluded from the source.
 * Nothing below a path the layer replaces is looked at (a symlinked /etc is never followed).
 */
export async function dockerInitLayerForDirectory(root: string): Promise<InitLayerForDirectory> {
  const pseudo: string[] = [];
  const excludes: string[] = [];
  const replaced = new Set<string>(); // directories the layer made anew: nothing of the source below
  const mode = MODE.toString(8);
  for (const e of DOCKER_INIT_LAYER) {
    const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
    const st = replaced.has(parent) ? undefined : await lstat(join(root, e.path)).catch(() => undefined);
    if (e.type === 'dir' && st?.isDirectory()) {
      pseudo.push(`${e.path} m ${mode} 0 0`);
      continue;
    }
    if (st) excludes.push(e.path);
    if (e.type === 'dir') {
      pseudo.push(`${e.path} d ${mode} 0 0`);
      replaced.add(e.path);
    } else if (e.type === 'file') {
      pseudo.push(`${e.path} f ${mode} 0 0 true`);
    } else {
      pseudo.push(`${e.path} s 777 0 0 ${e.target!}`);
    }
  }
  return { pseudo, excludes };
}
