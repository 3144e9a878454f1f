/**
 * The VM's volumes: each VOLUME of the image gets an empty host directory (a fresh temporary one
 * unless the caller binds its own), exported over 9p as tag mnt<k> and mounted over the image's
 * content, as on a provider.
 */
import { mkdir, realpath, stat } from 'node:fs/promises';
import { dir as tempDir, type DirectoryResult } from 'tmp-promise';
import { normaliseVolumePath } from '../image/container-config.js';
import { GvmiTestError } from '../errors.js';

export interface VolumeMount {
  guestPath: string;
  hostPath: string;
  tag: string;
  /** Created by gvmi-test (and removed at stop unless kept). */
  temporary: boolean;
}

export interface PlannedVolumes {
  mounts: VolumeMount[];
  cleanup: () => Promise<void>;
}

/**
 * Image volumes plus caller bindings (`guest path -> host dir`). A binding for a path that is not
 * an image VOLUME adds a volume there (as a requestor's extra volume would).
 */
export async function planVolumes(imageVolumes: readonly string[], bindings: Readonly<Record<string, string>> = {}): Promise<PlannedVolumes> {
  const bound = new Map<string, string>();
  for (const [guest, host] of Object.entries(bindings)) {
    if (!guest.startsWith('/')) throw new GvmiTestError('usage', `volume ${JSON.stringify(guest)} must be an absolute guest path`);
    const st = await stat(host).catch(() => undefined);
    if (!st) await mkdir(host, { recursive: true });
    else if (!st.isDirectory()) throw new GvmiTestError('usage', `volume host path ${host} is not a directory`);
    bound.set(normaliseVolumePath(guest), await realpath(host));
  }
  const guestPaths = [...new Set([...imageVolumes.map(normaliseVolumePath), ...bound.keys()])].sort();
  const temporaries: DirectoryResult[] = [];
  const mounts: VolumeMount[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.all(temporaries.map((t) => t.cleanup().catch(() => {})));
  };
  try {
    for (const [k, guestPath] of guestPaths.entries()) {
      let hostPath = bound.get(guestPath);
      if (hostPath === undefined) {
        const t = await tempDir({ prefix: `gvmi-vol-${k}-`, unsafeCleanup: true, mode: 0o700 });
        temporaries.push(t);
        hostPath = await realpath(t.path);
      }
      mounts.push({ guestPath, hostPath, tag: `mnt${k}`, temporary: !bound.has(guestPath) });
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { mounts, cleanup };
}
