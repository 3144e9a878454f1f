/** `run --report`: where the bytes went — the RAM overlay (and its largest files) and each volume. */
import { PinnedDir } from '../pinned-dir.js';
import type { UpperUsageEntry } from '../agent/agent-client.js';

export interface UsageReport {
  overlay: { totalBytes: number; usedBytes: number };
  largestOutsideVolumes: { path: string; bytes: number }[];
  /** `removedAtExit`: a temporary directory gvmi-test made, deleted when the VM stops (not kept). */
  volumes: { guestPath: string; hostPath: string; removedAtExit: boolean; bytes: number; files: number }[];
}

/** Bytes and files below a volume directory; the guest may be swapping entries for links meanwhile, so nothing is followed. */
async function directoryUsage(dir: PinnedDir): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  for (const name of await dir.list().catch(() => [] as string[])) {
    const st = await dir.lstat(name).catch(() => undefined);
    if (st?.isFile()) {
      bytes += st.blocks * 512;
      files++;
    } else if (st?.isDirectory()) {
      const sub = await dir.dir(name).catch(() => undefined);
      if (!sub) continue;
      try {
        const inner = await directoryUsage(sub);
        bytes += inner.bytes;
        files += inner.files;
      } finally {
        await sub.close();
      }
    }
  }
  return { bytes, files };
}

async function volumeUsage(hostPath: string, identity?: { dev: number; ino: number }): Promise<{ bytes: number; files: number }> {
  const root = await PinnedDir.openExpected(hostPath, identity);
  try {
    return await directoryUsage(root);
  } finally {
    await root.close();
  }
}

/**
 * `keep`: the VM keeps its temporary volume directories (--keep); otherwise they are gone by the
 * time anyone reads the report. Empty files are not where the bytes went: left out.
 */
/** What usageReport needs of a VM in this process (a served VM's volumes are not ours to read). */
export interface MeasurableVm {
  readonly volumes: readonly { guestPath: string; hostPath: string; temporary: boolean; identity?: { dev: number; ino: number } }[];
  stats(): Promise<{ overlay: { totalBytes: number; usedBytes: number } }>;
  overlayUsage(limit?: number): Promise<UpperUsageEntry[]>;
}

export async function usageReport(vm: MeasurableVm, { keep = false }: { keep?: boolean } = {}): Promise<UsageReport> {
  const stats = await vm.stats();
  return {
    overlay: { totalBytes: stats.overlay.totalBytes, usedBytes: stats.overlay.usedBytes },
    largestOutsideVolumes: (await vm.overlayUsage(5)).filter((f) => f.bytes > 0),
    volumes: await Promise.all(vm.volumes.map(async (v) => ({
      guestPath: v.guestPath,
      hostPath: v.hostPath,
      removedAtExit: v.temporary && !keep,
      ...(await volumeUsage(v.hostPath, v.identity)),
    }))),
  };
}
