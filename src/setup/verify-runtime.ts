/**
 * Proof that the guest runtime works on this host, with nothing but what gvmi-test ships and
 * QEMU + squashfs-tools: a .gvmi made by mksquashfs from a directory holding only what a
 * provider's init needs to boot (/etc, /proc, /sys), booted under provider conditions until the
 * guest's agent answers, asked for its statistics, and shut down. The image has no programs,
 * so no process runs: the kernel, the init and the agent are what is tested.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../image/build-image.js';
import { startVm } from '../vm/index.js';

export interface RuntimeProof {
  accelerator: string;
  bootMs: number;
  /** What the agent reported: the guest's uptime and the overlay's size, in its own words. */
  guestUptimeMs: number;
  overlayTotalBytes: number;
}

export async function proveRuntimeBoots(signal?: AbortSignal): Promise<RuntimeProof> {
  const dir = await mkdtemp(join(tmpdir(), 'gvmi-setup-'));
  try {
    const rootfs = join(dir, 'rootfs');
    for (const d of ['etc', 'proc', 'sys', 'var/tmp', 'golem/work']) await mkdir(join(rootfs, d), { recursive: true });
    const image = join(dir, 'setup-check.gvmi');
    await buildImage({ source: rootfs, output: image, volumes: ['/golem/work'], ...(signal ? { signal } : {}) });
    // No snapshot: this image is thrown away, and a saved state would only fill the cache.
    const vm = await startVm({ image, memory: 128, snapshot: false, ...(signal ? { signal } : {}) });
    try {
      const stats = await vm.stats();
      return { accelerator: vm.info.accelerator.accel, bootMs: vm.info.bootMs, guestUptimeMs: stats.uptimeMs, overlayTotalBytes: stats.overlay.totalBytes };
    } finally {
      await vm.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
