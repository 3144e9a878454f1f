/**
 * startVm's first step: everything it looks up before planning, read at once: the image, the
 * guest runtime, QEMU and what it supports, the accelerator, the user QEMU runs as, the host's
 * TSC rate under TCG, and the image's digest when snapshots are on.
 */
import { resolve } from 'node:path';
import { imageDigest } from '../image/image-digest.js';
import { readGvmi, type GvmiImage } from '../image/gvmi-file.js';
import { detectAccelerator, type Accelerator, type AcceleratorChoice } from '../qemu/accelerator.js';
import { hostTscKhz } from '../qemu/host-tsc.js';
import { resolveQemuUser, type QemuUser } from '../qemu/qemu-user.js';
import { findQemu, findRuntime, qemuSupportsSandbox, type RuntimeFiles } from '../qemu/runtime-files.js';

export interface VmHost {
  imagePath: string;
  image: GvmiImage;
  runtime: RuntimeFiles;
  qemuPath: string;
  accelerator: Accelerator;
  /** The image's digest; undefined when snapshots are off or it could not be read (no snapshot then). */
  digest: string | undefined;
  sandbox: boolean;
  /** QEMU's user when it differs from ours (gvmi-test as root). */
  qemuUser: QemuUser | undefined;
  /** Under TCG: the host's TSC rate, for the guest's clock (host-tsc.ts). */
  tscKhz: number | undefined;
}

export async function resolveVmHost(image: string, accel: AcceleratorChoice | undefined, withDigest: boolean): Promise<VmHost> {
  const imagePath = resolve(image);
  const [gvmi, runtime, qemuPath, accelerator, digest] = await Promise.all([
    readGvmi(imagePath),
    findRuntime(),
    findQemu(),
    detectAccelerator(accel),
    // No digest (unreadable image, …): no snapshot, and readGvmi says what is wrong.
    withDigest ? imageDigest(imagePath).catch(() => undefined) : undefined,
  ]);
  const [sandbox, qemuUser, tscKhz] = await Promise.all([
    qemuSupportsSandbox(qemuPath), resolveQemuUser(),
    accelerator.accel === 'tcg' ? hostTscKhz(runtime.tscKhzTool) : undefined,
  ]);
  return { imagePath, image: gvmi, runtime, qemuPath, accelerator, digest, sandbox, qemuUser, tscKhz };
}
