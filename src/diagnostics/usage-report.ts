/** `run --report`: where the bytes went — the RAM overlay (and its largest files) and each volume. */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedVm } from '../vm/started-vm.js';

export interface UsageReport {
  overlay: { totalBytes: number; usedBytes: number };
  largestOutsideVolumes: { path: string; bytes: number }[];
  volumes: { guestPath: string; hostPath: string; bytes: number; files: number }[];
}

async function directoryUsage(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = await directoryUsage(path);
      bytes += sub.bytes;
      files += sub.files;
    } else {
      const st = await lstat(path).catch(() => undefined);
      if (st?.isFile()) {
        bytes += st.blocks * 512;
        files++;
      }
    }
  }
  return { bytes, files };
}

export async function usageReport(vm: StartedVm): Promise<UsageReport> {
  const stats = await vm.stats();
  return {
    overlay: { totalBytes: stats.overlay.totalBytes, usedBytes: stats.overlay.usedBytes },
    largestOutsideVolumes: await vm.overlayUsage(5),
    volumes: await Promise.all(vm.volumes.map(async (v) => ({ guestPath: v.guestPath, hostPath: v.hostPath, ...(await directoryUsage(v.hostPath)) }))),
  };
}
