/**
 * startVm: boots a .gvmi the way a provider does and returns a StartedVm once the guest agent
 * answers and every volume is mounted. In four steps: resolve what the host has (vm-host.ts),
 * plan the VM (vm-plan.ts), launch it (restored from a snapshot or booted: snapshot-policy.ts),
 * mount its volumes; then the StartedVm takes over everything the start acquired. Any failure on
 * the way releases it all (QEMU killed, temporary directories removed) and rethrows.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { GvmiTestError } from '../errors.js';
import { prepareVmNetworking, type VmNetworkOptions } from '../network/vm-networking.js';
import { silentLogger } from '../logger.js';
import type { AcceleratorChoice } from '../qemu/accelerator.js';
import { saveVmState } from '../qemu/migration.js';
import type { RuntimeProfile } from '../runtime-profile.js';
import { snapshotsWanted } from '../snapshot/snapshot-settings.js';
import { saveSnapshotMemory } from '../snapshot/snapshot-store.js';
import { sharedMemoryDir, SHM_DIR } from './shared-memory-dir.js';
import type { MemoryFile } from '../qemu/qemu-args.js';
import { launchQemu, refreshGuest, type LaunchedQemu } from './launch-qemu.js';
import { validateResources } from './resource-limits.js';
import { runtimeProfileOrEnv } from './runtime-env.js';
import { ResourceStack } from './resource-stack.js';
import { startWithSnapshots, type SnapshotLauncher } from './snapshot-policy.js';
import { StartedVm } from './started-vm.js';
import { resolveVmHost, type VmHost } from './vm-host.js';
import { planVm, type VmPlan } from './vm-plan.js';
import type { DeployVolumes } from './deploy-volumes.js';

export interface StartVmOptions extends VmNetworkOptions {
  image: string;
  /** Guest path -> host directory. Image VOLUMEs not listed get a fresh empty temporary directory. */
  volumes?: Record<string, string>;
  /**
   * Volumes a requestor adds at deploy (runtime 0.5 only; refused under 0.4): guest path ->
   * `{ kind: 'host' }`, `{ kind: 'ram', sizeMiB }` (at '/' the space outside volumes) or
   * `{ kind: 'storage', sizeMiB, errors? }` (an ext2 disk). See src/vm/deploy-volumes.ts.
   */
  deployVolumes?: DeployVolumes;
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
  /** Aborts the start (the VM is torn down, `vm.boot-failed`); aborted later, it stops the VM. */
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

export async function startVm(options: StartVmOptions): Promise<StartedVm> {
  const started = performance.now();
  // Before anything boots: out of range, QEMU fails without saying why (resource-limits.ts).
  validateResources(options);
  const logger = (options.logger ?? silentLogger).child({ vm: ++vmCounter });
  const host = await resolveVmHost(options.image, options.accel, snapshotsWanted(options.snapshot));
  logger.debug({ accelerator: host.accelerator }, 'accelerator chosen');
  const resources = new ResourceStack();
  try {
    // The provider's NICs and what joins them (networks: src/network/), released after QEMU.
    const networking = await prepareVmNetworking(runtimeProfileOrEnv(options.runtimeVersion), options);
    resources.defer(() => networking.close());
    const plan = await planVm(host, { ...options, nics: { launch: networking.nics, key: networking.keyNics } }, resources);
    const { launched, snapshot } = await startWithSnapshots({
      key: plan.snapshotKey,
      launcher: qemuLauncher(host, plan, resources, logger, options.signal),
      logger,
      ...(options.signal ? { signal: options.signal } : {}),
      describe: () => ({ image: host.imagePath, runtime: host.runtime.runtimeHash, memoryMiB: plan.memoryMiB, cpus: plan.cpus, accelerator: host.accelerator.accel }),
    });
    // Sent back to back: the agent mounts them in order, and no round trip waits on another.
    await Promise.all(plan.mounts.map((m) => launched.client.mountVolume(m.tag, m.guestPath)));
    // As the runtime joins the requestor's network and outbound access: after start, before the
    // first command (lib.rs join_network).
    await networking.join(launched.client);
    plan.started();
    return new StartedVm({
      qemu: launched,
      resources: resources.move(),
      logger,
      volumes: plan.mounts,
      networking,
      info: {
        image: host.imagePath, metadata: host.image.metadata, accelerator: host.accelerator, memoryMiB: plan.memoryMiB, cpus: plan.cpus,
        bootMs: Math.round(performance.now() - started), consoleLog: plan.consoleLog, shadowed: await plan.shadowed, snapshot, runtimeVersion: plan.runtime,
        ...(plan.deployVolumes.length > 0 ? { deployVolumes: plan.deployVolumes } : {}),
        ...(networking.ip ? { network: { ip: networking.ip, ...(options.network ? { cidr: options.network.ip } : {}) } } : {}),
        ...(networking.outbound ? { outbound: true } : {}),
      },
      ...(options.env ? { env: options.env } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    await resources.dispose().catch(() => {});
    throw error;
  }
}

/** Launches QEMU for the snapshot policy; each launch's QEMU goes on `resources` as it starts. */
function qemuLauncher(host: VmHost, plan: VmPlan, resources: ResourceStack, logger: Logger, signal: AbortSignal | undefined): SnapshotLauncher<LaunchedQemu> {
  let attempt = 0;
  /** The RAM file of the VM being saved (one boot per start at most). */
  let sharedMemory: string | undefined;
  /** Why the VM booted to be saved has no RAM file (its state is then not saved). */
  let noRoomForMemory: string | undefined;
  return {
    launch: async (mode) => {
      const agentSocket = join(plan.privateDir, `agent-${++attempt}.sock`);
      let memory: MemoryFile | undefined;
      if (mode.kind === 'restore') memory = { path: mode.memoryPath, shared: false };
      else if (mode.monitor) {
        const place = await sharedMemoryDir(plan.memoryMiB, plan.privateDir);
        if (place?.made) {
          const { dir } = place;
          resources.defer(() => rm(dir, { recursive: true, force: true }));
          plan.removeOnHostDeath.push(dir);
        }
        if (place) {
          sharedMemory = join(place.dir, `ram-${attempt}`);
          memory = { path: sharedMemory, shared: true };
        } else {
          noRoomForMemory = `neither ${SHM_DIR} nor ${plan.privateDir} has room for the VM's ${plan.memoryMiB} MiB of RAM as a file`;
        }
      }
      const launched = await launchQemu({
        qemuPath: host.qemuPath,
        args: plan.qemuArgs(agentSocket, memory),
        agentSocket,
        monitorSocket: join(plan.privateDir, `qmp-${attempt}.sock`),
        consoleLog: plan.consoleLog,
        mode,
        timeoutMs: mode.kind === 'restore' ? plan.timeouts.restoreMs : plan.timeouts.bootMs,
        logger,
        removeOnHostDeath: plan.removeOnHostDeath,
        ...(signal ? { signal } : {}),
      });
      resources.defer(() => launched.resources.dispose());
      return launched;
    },
    save: async (launched, temporaryPath, finalPath) => {
      const memory = sharedMemory;
      if (noRoomForMemory) throw new GvmiTestError('snapshot.failed', `${noRoomForMemory}: its state is not saved`);
      if (!launched.qmp || !memory) throw new GvmiTestError('snapshot.failed', 'this VM was started without a monitor: its state cannot be saved');
      try {
        return await saveVmState(launched.qmp, temporaryPath, finalPath, host.qemuUser, plan.timeouts.saveMs, (state) => saveSnapshotMemory(memory, state, finalPath));
      } finally {
        // Saved or not, the name goes; QEMU's mapping stays until it exits.
        await rm(memory, { force: true });
      }
    },
    resume: async (launched) => {
      launched.qmp?.close();
      // The guest was paused while its state was written: its clock is behind, and it shares its
      // random state with every VM that will be restored from the snapshot.
      await refreshGuest(launched.client, undefined, logger);
    },
  };
}
