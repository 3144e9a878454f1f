/**
 * startVm's second step: what the VM will be, decided before anything boots. Its private
 * directory, its volumes, its QEMU command line (one builder for the launch and the snapshot key:
 * the key is that command line with the per-VM paths left out), its snapshot key and timeouts.
 * What the plan creates (the directory, volume directories) goes on the caller's ResourceStack.
 */
import { join } from 'node:path';
import { dir as tempDir } from 'tmp-promise';
import { buildQemuArgs, type MemoryFile, type NicDevice, type QemuSpec } from '../qemu/qemu-args.js';
import type { RuntimeProfile } from '../runtime-profile.js';
import { hostCpuIdentity, qemuIdentity, snapshotKey } from '../snapshot/snapshot-store.js';
import { DEFAULT_MEMORY_MIB } from './resource-limits.js';
import type { ResourceStack } from './resource-stack.js';
import { runtimeProfileOrEnv } from './runtime-env.js';
import { shadowedPaths } from './shadowed-paths.js';
import type { VmHost } from './vm-host.js';
import { planVolumes, type VolumeMount } from './volumes.js';
import { createStorageDisks, planDeployVolumes, type DeployVolumeInfo, type DeployVolumes } from './deploy-volumes.js';
import { normaliseVolumePath } from '../image/container-config.js';
import { GvmiTestError } from '../errors.js';
import { MICROVM_VIRTIO_SLOTS, virtioDeviceCount } from '../qemu/qemu-args.js';

/** What differs between two VMs of one configuration: left out of the snapshot key. */
export type PerVmPaths = Pick<QemuSpec, 'agentSocket' | 'consoleLog' | 'image' | 'memoryFile'> & { volumeHostPaths: readonly string[]; nics: readonly NicDevice[] };

export interface VmPlanOptions {
  volumes?: Record<string, string>;
  deployVolumes?: DeployVolumes;
  memory?: number;
  cpus?: number;
  runtimeVersion?: RuntimeProfile;
  overlayMiB?: number;
  hostname?: string;
  bootTimeoutMs?: number;
  keepVolumes?: boolean;
  /** The provider's NICs (src/network/vm-networking.ts): as launched, and with ports left out for the key. */
  nics?: { launch: readonly NicDevice[]; key: readonly NicDevice[] };
}

export interface VmPlan {
  privateDir: string;
  consoleLog: string;
  mounts: VolumeMount[];
  /** The requestor's deploy volumes (runtime 0.5), as planned. */
  deployVolumes: DeployVolumeInfo[];
  memoryMiB: number;
  cpus: number;
  runtime: RuntimeProfile;
  /**
   * The QEMU command line (each launch gets its own agent socket). `memory`: the guest's RAM in a
   * file, for a VM to be saved or restored (migration.ts); anonymous memory without.
   */
  qemuArgs(agentSocket: string, memory?: MemoryFile): string[];
  /** Undefined when snapshots are off or the image has no digest. */
  snapshotKey: string | undefined;
  timeouts: { bootMs: number; restoreMs: number; saveMs: number };
  /** Directories to remove should this process die while QEMU runs. */
  removeOnHostDeath: string[];
  /** Files of the image the volumes hide (read while the VM boots). */
  shadowed: Promise<string[]>;
  /** The start succeeded: temporary volumes are kept at the end when the caller asked. */
  started(): void;
}

/** Stand-ins for the per-VM paths, so that two VMs of one configuration share a snapshot key. */
const KEY_PLACEHOLDERS = { agentSocket: '<agent>', consoleLog: '<console>', image: '<image>', volume: '<volume>', memoryFile: { path: '<ram>', shared: false } };

export async function planVm(host: VmHost, options: VmPlanOptions, resources: ResourceStack): Promise<VmPlan> {
  const runtime = runtimeProfileOrEnv(options.runtimeVersion);
  // Refused before anything is made: what the runtime does not offer, what a provider refuses.
  const deploy = planDeployVolumes(runtime, host.image.metadata.volumes, options.deployVolumes, Object.keys(options.volumes ?? {}));
  const privateDir = resources.adopt(await tempDir({ prefix: 'gvmi-vm-', unsafeCleanup: true, mode: 0o700 }), (d) => d.cleanup());
  // The 9p volumes: the image's, less those a ram or storage volume replaces, plus the deploy's host volumes.
  const ninePVolumes = [
    ...host.image.metadata.volumes.filter((v) => !deploy.replacedImageVolumes.includes(normaliseVolumePath(v))),
    ...deploy.extraHostPaths,
  ];
  const planned = await planVolumes(ninePVolumes, options.volumes, host.qemuUser);
  // Storage disks in the private directory: removed with it.
  const bootVolumes = await createStorageDisks(deploy.bootVolumes, privateDir.path);
  const devices = virtioDeviceCount({ volumes: planned.mounts, bootVolumes, nics: options.nics?.launch ?? [] });
  if (devices > MICROVM_VIRTIO_SLOTS) {
    const storage = bootVolumes.filter((v) => v.kind === 'storage').length;
    throw new GvmiTestError('usage', `this VM needs ${devices} virtio devices (the image disk, the agent channel, the rng, ${planned.mounts.length} 9p volume(s), ${storage} storage disk(s), ${options.nics?.launch.length ?? 0} NIC(s)); gvmi-test's microvm has ${MICROVM_VIRTIO_SLOTS}`, {
      hint: 'use fewer storage or host volumes (a ram volume needs no device); a provider\'s PCI machine has room for more, so this is a gvmi-test limit',
    });
  }
  // Released once QEMU is gone (it is pushed later): bound directories go back to their owners.
  let keepVolumes = false;
  resources.defer(() => planned.cleanup({ keepTemporaries: keepVolumes }));
  const consoleLog = join(privateDir.path, 'console.log');
  const memoryMiB = options.memory ?? DEFAULT_MEMORY_MIB;
  const cpus = options.cpus ?? 1;
  const { accelerator } = host;

  const commandLine = (paths: PerVmPaths): string[] => buildQemuArgs({
    accelerator, memoryMiB, cpus,
    kernel: host.runtime.kernel,
    initramfs: host.runtime.initramfs,
    hostname: options.hostname ?? 'golem',
    overlayMiB: options.overlayMiB ?? 128,
    runtime,
    sandbox: host.sandbox,
    ...(host.qemuUser ? { runAs: host.qemuUser.name } : {}),
    ...(host.tscKhz ? { tscKhz: host.tscKhz } : {}),
    agentSocket: paths.agentSocket,
    consoleLog: paths.consoleLog,
    image: paths.image,
    volumes: planned.mounts.map((m, i) => ({ tag: m.tag, hostPath: paths.volumeHostPaths[i]! })),
    bootVolumes,
    ...(paths.nics.length ? { nics: paths.nics } : {}),
    ...(paths.memoryFile ? { memoryFile: paths.memoryFile } : {}),
  });

  // A storage disk is formatted by the guest at boot: a saved VM would expect that file, not the
  // next VM's fresh one. Ram volumes are empty tmpfs at boot and in the key's command line.
  const key = host.digest && !bootVolumes.some((v) => v.kind === 'storage')
    ? snapshotKey({
      imageDigest: host.digest,
      ...(accelerator.accel === 'kvm' ? { hostCpu: await hostCpuIdentity() } : {}),
      kernelHash: host.runtime.kernelHash,
      initHash: host.runtime.initHash,
      qemuIdentity: await qemuIdentity(host.qemuPath),
      args: commandLine({ ...KEY_PLACEHOLDERS, volumeHostPaths: planned.mounts.map(() => KEY_PLACEHOLDERS.volume), nics: options.nics?.key ?? [] }),
    })
    : undefined;

  const bootMs = options.bootTimeoutMs ?? (accelerator.accel === 'kvm' ? 20_000 : 60_000);
  return {
    privateDir: privateDir.path,
    consoleLog,
    mounts: planned.mounts,
    deployVolumes: deploy.info,
    memoryMiB,
    cpus,
    runtime,
    qemuArgs: (agentSocket, memory) => commandLine({ agentSocket, consoleLog, image: host.imagePath, volumeHostPaths: planned.mounts.map((m) => m.hostPath), nics: options.nics?.launch ?? [], ...(memory ? { memoryFile: memory } : {}) }),
    snapshotKey: key,
    timeouts: {
      bootMs,
      // A restore that does not answer soon is broken; a boot is the better bet than waiting long.
      restoreMs: Math.min(bootMs, accelerator.accel === 'kvm' ? 10_000 : 20_000),
      saveMs: Number(process.env['GVMI_TEST_SNAPSHOT_SAVE_TIMEOUT_MS'] ?? bootMs),
    },
    removeOnHostDeath: [privateDir.path, ...(options.keepVolumes ? [] : planned.mounts.filter((m) => m.temporary).map((m) => m.hostPath))],
    shadowed: shadowedPaths(host.imagePath, host.image.metadata, planned.mounts.map((m) => m.guestPath), host.digest).catch(() => [] as string[]),
    started: () => { keepVolumes = options.keepVolumes ?? false; },
  };
}
