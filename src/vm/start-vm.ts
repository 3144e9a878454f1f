/**
 * startVm: boots a .gvmi the way a provider does and returns a StartedVm once the guest agent
 * answers and every volume is mounted. Any failure on the way rolls everything back (QEMU killed,
 * temporary directories removed) and rethrows the first error.
 */
import { GvmiTestError } from '../errors.js';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { silentLogger } from '../logger.js';
import { dir as tempDir } from 'tmp-promise';
import { imageDigest } from '../image/image-digest.js';
import { readGvmi } from '../image/gvmi-file.js';
import { detectAccelerator, type AcceleratorChoice } from '../qemu/accelerator.js';
import { buildQemuArgs, type QemuSpec } from '../qemu/qemu-args.js';
import { saveVmState } from '../qemu/migration.js';
import { findQemu, findRuntime, qemuSupportsSandbox } from '../qemu/runtime-files.js';
import { hostTscKhz } from '../qemu/host-tsc.js';
import { resolveQemuUser } from '../qemu/qemu-user.js';
import { crashError, launchQemu, refreshGuest, type LaunchedQemu, type LaunchMode } from './launch-qemu.js';
import { describeSnapshot, discardSnapshot, findSnapshot, hostCpuIdentity, pruneSnapshots, qemuIdentity, snapshotKey, snapshotStatePath, snapshotTemporaryPath } from '../snapshot/snapshot-store.js';
import { StartedVm, type SnapshotUse } from './started-vm.js';
import { shadowedPaths } from './shadowed-paths.js';
import { snapshotsWanted } from '../snapshot/snapshot-settings.js';
import { planVolumes } from './volumes.js';
import type { RuntimeProfile } from '../runtime-profile.js';
import { runtimeProfileOrEnv } from './runtime-env.js';
import { DEFAULT_MEMORY_MIB, validateResources } from './resource-limits.js';

export interface StartVmOptions {
  image: string;
  /** Guest path -> host directory. Image VOLUMEs not listed get a fresh empty temporary directory. */
  volumes?: Record<string, string>;
  /** MiB of guest RAM (default 512; at least 64, at most what the host has available). */
  memory?: number;
  /** Guest CPUs (default 1, at most 64). */
  cpus?: number;
  accel?: AcceleratorChoice;
  /** Added to the image Env for every process. */
  env?: Record<string, string>;
  /**
   * The provider runtime to reproduce: '0.4' (default: a 128 MiB overlay, the image Env applied)
   * or '0.5' (overlay on the root tmpfs, an empty environment whenever Env is sent). See
   * runtime-profile.ts and docs/fidelity.md.
   */
  runtimeVersion?: RuntimeProfile;
  /** Size of the overlay's writable tmpfs in MiB (a provider's is 128; runtime 0.4). */
  overlayMiB?: number;
  hostname?: string;
  logger?: Logger;
  signal?: AbortSignal;
  /** How long the guest may take to answer (default 60 s under TCG, 20 s under KVM). */
  bootTimeoutMs?: number;
  /** Keep temporary volume directories after stop (their paths are in vm.volumes). */
  keepVolumes?: boolean;
  /**
   * Start from a saved snapshot of this image's booted VM when one exists, and save one after a
   * boot when none does (default true; GVMI_TEST_SNAPSHOT=0 turns it off for every start).
   */
  snapshot?: boolean;
}

let vmCounter = 0;

/** Stand-ins for the per-VM paths, so that two VMs of one configuration share a snapshot key. */
const KEY_PLACEHOLDERS = { agentSocket: '<agent>', consoleLog: '<console>', image: '<image>', volume: '<volume>' };

export async function startVm(options: StartVmOptions): Promise<StartedVm> {
  const started = performance.now();
  // Before anything boots: out of range, QEMU fails without saying why (resource-limits.ts).
  validateResources(options);
  const logger = (options.logger ?? silentLogger).child({ vm: ++vmCounter });
  const imagePath = resolve(options.image);
  const useSnapshots = snapshotsWanted(options.snapshot);
  const [image, runtime, qemuPath, accelerator, digest] = await Promise.all([
    readGvmi(imagePath),
    findRuntime(),
    findQemu(),
    detectAccelerator(options.accel),
    // No digest (unreadable image, …): no snapshot, and readGvmi says what is wrong.
    useSnapshots ? imageDigest(imagePath).catch(() => undefined) : undefined,
  ]);
  const [sandbox, qemuUser, tscKhz] = await Promise.all([
    qemuSupportsSandbox(qemuPath), resolveQemuUser(),
    accelerator.accel === 'tcg' ? hostTscKhz(runtime.tscKhzTool) : undefined,
  ]);
  logger.debug({ accelerator }, 'accelerator chosen');

  const cleanups: (() => Promise<void>)[] = [];
  let keepVolumes = options.keepVolumes ?? false;
  const cleanup = async (keep: boolean): Promise<void> => {
    keepVolumes = keep;
    for (const c of cleanups.reverse()) await c().catch(() => {});
    cleanups.length = 0;
  };
  let vmRef: StartedVm | undefined;
  try {
    const privateDir = await tempDir({ prefix: 'gvmi-vm-', unsafeCleanup: true, mode: 0o700 });
    cleanups.push(() => privateDir.cleanup());
    const planned = await planVolumes(image.metadata.volumes, options.volumes, qemuUser);
    // Run once QEMU is gone (cleanups run in reverse): bound directories go back to their owners.
    cleanups.push(() => planned.cleanup({ keepTemporaries: keepVolumes }));

    // Read while the VM boots.
    const shadowed = shadowedPaths(imagePath, image.metadata, planned.mounts.map((m) => m.guestPath), digest).catch(() => [] as string[]);
    const consoleLog = join(privateDir.path, 'console.log');
    const memoryMiB = options.memory ?? DEFAULT_MEMORY_MIB;
    const cpus = options.cpus ?? 1;
    const spec: Omit<QemuSpec, 'agentSocket' | 'consoleLog' | 'image' | 'volumes'> = {
      accelerator, memoryMiB, cpus,
      kernel: runtime.kernel,
      initramfs: runtime.initramfs,
      hostname: options.hostname ?? 'golem',
      overlayMiB: options.overlayMiB ?? 128,
      runtime: runtimeProfileOrEnv(options.runtimeVersion),
      sandbox,
      ...(qemuUser ? { runAs: qemuUser.name } : {}),
      ...(tscKhz ? { tscKhz } : {}),
    };
    const bootTimeoutMs = options.bootTimeoutMs ?? (accelerator.accel === 'kvm' ? 20_000 : 60_000);
    let attempt = 0;
    const launch = (mode: LaunchMode, timeoutMs: number): Promise<LaunchedQemu> => {
      const agentSocket = join(privateDir.path, `agent-${++attempt}.sock`);
      return launchQemu({
        qemuPath,
        args: buildQemuArgs({ ...spec, agentSocket, consoleLog, image: imagePath, volumes: planned.mounts.map((m) => ({ tag: m.tag, hostPath: m.hostPath })) }),
        agentSocket,
        monitorSocket: join(privateDir.path, `qmp-${attempt}.sock`),
        consoleLog, mode, timeoutMs, logger,
        removeOnHostDeath: [privateDir.path, ...(keepVolumes ? [] : planned.mounts.filter((m) => m.temporary).map((m) => m.hostPath))],
        ...(options.signal ? { signal: options.signal } : {}),
        stoppedOnPurpose: () => vmRef?.stopped ?? false,
      });
    };

    const key = digest
      ? snapshotKey({
        imageDigest: digest,
        ...(accelerator.accel === 'kvm' ? { hostCpu: await hostCpuIdentity() } : {}),
        kernelHash: runtime.kernelHash,
        initHash: runtime.initHash,
        qemuIdentity: await qemuIdentity(qemuPath),
        args: buildQemuArgs({
          ...spec, agentSocket: KEY_PLACEHOLDERS.agentSocket, consoleLog: KEY_PLACEHOLDERS.consoleLog, image: KEY_PLACEHOLDERS.image,
          volumes: planned.mounts.map((m) => ({ tag: m.tag, hostPath: KEY_PLACEHOLDERS.volume })),
        }),
      })
      : undefined;
    let snapshot: SnapshotUse = key ? { use: 'saved', key } : { use: 'off' };
    let launched: LaunchedQemu | undefined;
    const found = key ? await findSnapshot(key, logger) : undefined;
    if (key && found) {
      try {
        // A restore that does not answer soon is broken; a boot is the better bet than waiting long.
        launched = await launch({ kind: 'restore', statePath: found.path }, Math.min(bootTimeoutMs, accelerator.accel === 'kvm' ? 10_000 : 20_000));
        snapshot = { use: 'restored', key };
      } catch (error) {
        if (options.signal?.aborted) throw error;
        // QEMU exiting means it could not load the state (corrupt, or from an incompatible host),
        // and a guest refusing RESUMED cannot be used either: that file is dropped, unless another
        // process has already put a new one in its place. A slow answer (a loaded host) or a file
        // pruned meanwhile says nothing against the state.
        const unloadable = error instanceof GvmiTestError && (error.code === 'vm.boot-failed' || error.code === 'agent.request-failed');
        logger.warn({ error, key }, 'restoring the snapshot failed; booting instead');
        if (unloadable) await discardSnapshot(key, found);
        snapshot = { use: 'saved', key, replaced: (error as Error).message };
      }
    }
    if (!launched) launched = await launch({ kind: 'boot', monitor: key !== undefined }, bootTimeoutMs);
    const { proc, client } = launched;
    cleanups.push(launched.dispose);

    if (key && launched.qmp && snapshot.use === 'saved') {
      // Saved before any volume is mounted: QEMU refuses to migrate with a 9p export in use.
      // Nothing of the image has run yet, and nothing may: whatever ran (a daemon a hostile
      // /bin/sh leaves behind, a file it writes) would be saved and start again in every restored
      // VM, before the user's first command. The first process a VM runs is the user's, id 1, as
      // on a provider.
      try {
        const saveTimeoutMs = Number(process.env['GVMI_TEST_SNAPSHOT_SAVE_TIMEOUT_MS'] ?? bootTimeoutMs);
        const saved = await saveVmState(launched.qmp, await snapshotTemporaryPath(key), snapshotStatePath(key), qemuUser, saveTimeoutMs);
        snapshot = { ...snapshot, bytes: saved.bytes, saveMs: saved.ms };
        logger.debug({ key, ...saved }, 'snapshot saved');
        await describeSnapshot(key, { image: imagePath, runtime: runtime.runtimeHash, memoryMiB, cpus, accelerator: accelerator.accel, savedAt: new Date().toISOString(), ...saved }).catch(() => {});
        void pruneSnapshots(undefined, key).catch(() => {});
      } catch (error) {
        logger.warn({ error }, 'saving a snapshot failed; this VM runs on');
        snapshot = { use: 'failed', key, reason: (error as Error).message };
      }
      launched.qmp.close();
      // The guest was paused while its state was written: its clock is behind, and it shares its
      // random state with every VM that will be restored from the snapshot.
      await refreshGuest(client, undefined, logger);
    }

    // Sent back to back: the agent mounts them in order, and no round trip waits on another.
    await Promise.all(planned.mounts.map((m) => client.mountVolume(m.tag, m.guestPath)));

    const vm = new StartedVm({
      client, qemu: proc, logger, volumes: planned.mounts,
      info: { image: imagePath, metadata: image.metadata, accelerator, memoryMiB, cpus, bootMs: Math.round(performance.now() - started), consoleLog, shadowed: await shadowed, snapshot, runtimeVersion: spec.runtime },
      cleanup, keepVolumes,
      ...(options.env ? { env: options.env } : {}),
    });
    vmRef = vm;
    void proc.exited.then(async (r) => {
      if (vm.stopped) return;
      vm.markCrashed(await crashError(consoleLog, r.exitCode ?? r.signal ?? 'unknown', await proc.finalStderr()));
      await cleanup(keepVolumes);
    });
    return vm;
  } catch (error) {
    await cleanup(false);
    throw error;
  }
}
