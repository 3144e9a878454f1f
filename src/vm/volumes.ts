/**
 * The VM's volumes: each VOLUME of the image gets an empty host directory (a fresh temporary one
 * unless the caller binds its own), exported over 9p as tag mnt<k> and mounted over the image's
 * content, as on a provider. Directories handed to QEMU's user are given back at cleanup
 * (volume-handback.ts): a caller's directory is never left to `nobody`.
 */
import { chmod, chown, mkdir, realpath, rmdir, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { dir as tempDir, type DirectoryResult } from 'tmp-promise';
import { normaliseVolumePath } from '../image/container-config.js';
import { GvmiTestError } from '../errors.js';
import { handBack, recordOwnership, type OriginalOwnership } from './volume-handback.js';
import { ResourceStack } from './resource-stack.js';
import { PinnedDir } from '../pinned-dir.js';

export interface VolumeMount {
  guestPath: string;
  hostPath: string;
  tag: string;
  /** Created by gvmi-test (and removed at stop unless kept). */
  temporary: boolean;
  /**
   * The directory's identity when it was planned: whatever later opens `hostPath` checks it is
   * still this directory (volume-root.ts), so a guest or local user who replaces it (or a parent)
   * with a link cannot send host operations elsewhere.
   */
  identity?: { dev: number; ino: number };
}

export interface PlannedVolumes {
  mounts: VolumeMount[];
  /**
   * Gives every directory handed to QEMU's user back to its owner (the caller's with what the
   * guest wrote in them; kept temporaries to us) and removes the temporaries unless kept.
   * Call it once QEMU has exited.
   */
  cleanup: (options?: { keepTemporaries?: boolean }) => Promise<void>;
}

/**
 * Image volumes plus caller bindings (`guest path -> host dir`). A binding for a path that is not
 * an image VOLUME adds a volume there (as a requestor's extra volume would).
 */
export async function planVolumes(
  imageVolumes: readonly string[],
  bindings: Readonly<Record<string, string>> = {},
  /** QEMU's user when it differs from ours: each volume directory is handed to it, as a provider's are its own. */
  owner?: { uid: number; gid: number },
): Promise<PlannedVolumes> {
  const bound = new Map<string, string>();
  for (const [guest, host] of Object.entries(bindings)) {
    if (!guest.startsWith('/')) throw new GvmiTestError('usage', `volume ${JSON.stringify(guest)} must be an absolute guest path`);
    const st = await stat(host).catch(() => undefined);
    if (!st) await mkdir(host, { recursive: true });
    else if (!st.isDirectory()) throw new GvmiTestError('usage', `volume host path ${host} is not a directory`);
    bound.set(normaliseVolumePath(guest), await realpath(host));
  }
  // One host directory inside another would let the guest, through the outer volume, replace the
  // inner one with a link: every host operation on the inner volume would then go where it points.
  const hosts = [...new Set(bound.values())];
  for (const a of hosts) {
    for (const b of hosts) {
      if (a !== b && b.startsWith(`${a}/`)) {
        throw new GvmiTestError('usage', `volume host directories must not nest: ${b} is inside ${a}`, {
          hint: 'bind separate directories (e.g. ./work/input and ./work/output, not ./work and ./work/output)',
        });
      }
    }
  }
  const guestPaths = [...new Set([...imageVolumes.map((v) => normaliseVolumePath(v)), ...bound.keys()])].sort();
  const mounts: VolumeMount[] = [];
  const temporaries: DirectoryResult[] = [];
  const identities = new Map<string, { dev: number; ino: number }>();
  /** By host path: one directory bound twice is recorded before it is first handed over. */
  const handedOver = new Map<string, { original: OriginalOwnership; temporary: boolean }>();
  let keepTemporaries = false;
  const resources = new ResourceStack();
  // Released last: the temporaries go once every directory was given back.
  resources.defer(() => keepTemporaries ? undefined : Promise.all(temporaries.map((t) => removeTemporary(t.path, identities.get(t.path)).catch(() => {}))));
  if (owner) {
    resources.defer(async () => {
      const failures: unknown[] = [];
      // Deepest first: a directory bound inside another gets its guest files, not the outer's owner.
      const survivors = [...handedOver.values()].filter((h) => !h.temporary || keepTemporaries);
      for (const { original } of survivors.sort((a, b) => b.original.path.length - a.original.path.length)) {
        await handBack(original, owner.uid).catch((error: unknown) => failures.push(error));
      }
      if (failures.length > 0) throw failures[0];
    });
  }
  const cleanup = async (options: { keepTemporaries?: boolean } = {}): Promise<void> => {
    keepTemporaries = options.keepTemporaries ?? false;
    await resources.dispose();
  };
  try {
    for (const [k, guestPath] of guestPaths.entries()) {
      let hostPath = bound.get(guestPath);
      if (hostPath === undefined) {
        const t = await tempDir({ prefix: `gvmi-vol-${k}-`, unsafeCleanup: true, mode: 0o700 });
        temporaries.push(t);
        hostPath = await realpath(t.path);
        const { dev, ino } = await stat(hostPath);
        identities.set(t.path, { dev, ino });
      }
      if (owner) {
        if (!handedOver.has(hostPath)) handedOver.set(hostPath, { original: await recordOwnership(hostPath), temporary: !bound.has(guestPath) });
        await chown(hostPath, owner.uid, owner.gid);
        await assertReachable(hostPath, owner.uid);
      }
      const { dev, ino } = await stat(hostPath);
      mounts.push({ guestPath, hostPath, tag: `mnt${k}`, temporary: !bound.has(guestPath), identity: { dev, ino } });
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { mounts, cleanup };
}

/** QEMU (as `uid`) must be able to walk down to the volume directory. */
async function assertReachable(path: string, uid: number): Promise<void> {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const st = await stat(dir);
    const searchable = st.uid === uid ? (st.mode & 0o100) !== 0 : (st.mode & 0o001) !== 0;
    if (!searchable) {
      throw new GvmiTestError('usage', `QEMU runs unprivileged and cannot reach volume directory ${path}: ${dir} is not searchable by others`, {
        hint: `chmod o+x ${dir}, use a directory under /tmp, or set GVMI_TEST_QEMU_USER=root`,
      });
    }
    if (dir === dirname(dir)) return;
  }
}

/**
 * Removes a temporary volume directory without following anything in it. QEMU is gone when this
 * runs (the launch's resources are released first, and its stop waits for the exit), but another
 * process of QEMU's user may still be swapping a subdirectory for a link to a host directory, and
 * a path-based recursive removal (`rm -r` by names, as tmp's cleanup does) would then delete
 * through it. So: the directory is pinned and checked to be the one made (not a link or another
 * directory put in its place: it sits in the sticky /tmp, where its owner may rename it), taken
 * back (ours, 0700: QEMU's user can no longer rename it or reach into it by name), emptied
 * descriptor-relatively (PinnedDir.removeTree: O_PATH|O_NOFOLLOW per step, never a link
 * followed), and only then removed by name, once its identity is checked again.
 */
export async function removeTemporary(path: string, identity: { dev: number; ino: number } | undefined): Promise<void> {
  const parent = await PinnedDir.open(dirname(path));
  const name = basename(path);
  try {
    const dir = await parent.dir(name).catch(() => undefined);
    if (!dir) return;
    try {
      if (identity && (dir.stats.dev !== identity.dev || dir.stats.ino !== identity.ino)) return; // not ours any more
      const self = `/proc/self/fd/${dir.fd}`;
      if (process.getuid?.() === 0) await chown(self, 0, 0);
      await chmod(self, 0o700);
      for (const child of await dir.list()) await dir.removeTree(child);
    } finally {
      await dir.close();
    }
    const now = await parent.lstat(name);
    if (now?.isDirectory() && (!identity || (now.dev === identity.dev && now.ino === identity.ino))) await rmdir(parent.pathOf(name));
  } finally {
    await parent.close();
  }
}
