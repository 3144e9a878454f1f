/**
 * A booted VM: run commands, move files through volumes, read stats, stop. `await using vm =
 * await startVm(...)` stops it at the end of the scope. It owns what its start acquired (QEMU,
 * its channels, its directories) and watches QEMU: an exit it did not ask for is a crash.
 * Processes run through the process layer shared with served VMs (process-runner.ts) over this
 * VM's agent channel (agent-transport.ts).
 */
import type { Logger } from 'pino';
import type { AgentClient, UpperUsageEntry } from '../agent/agent-client.js';
import { GvmiTestError } from '../errors.js';
import type { ImageMetadata } from '../image/container-config.js';
import type { Accelerator } from '../qemu/accelerator.js';
import type { RuntimeProfile } from '../runtime-profile.js';
import type { DeployVolumeInfo } from './deploy-volumes.js';
import type { Finding } from '../diagnostics/finding.js';
import type { Refusal } from '../network/outbound-filter.js';
import type { VmNetworking } from '../network/vm-networking.js';
import { shadowingFinding } from '../diagnostics/run-findings.js';
import { AgentTransport, type ConsoleStart } from './agent-transport.js';
import { consoleTail, readConsole } from './console-log.js';
import type { ExecResult, GuestProcess } from './guest-process.js';
import type { LaunchedQemu } from './launch-qemu.js';
import type { ExecOptions, SpawnOptions } from './process-options.js';
import { ProcessRunner } from './process-runner.js';
import type { ResourceStack } from './resource-stack.js';
import type { SnapshotUse } from './snapshot-policy.js';
import { downloadFromVolume, emptyVolume, uploadToVolume, type DownloadOptions, type DownloadReport } from './transfer.js';
import type { VmLike, VmStats } from './vm-like.js';
import { crashError } from './vm-failures.js';
import type { VolumeMount } from './volumes.js';

export type { SnapshotUse } from './snapshot-policy.js';
export type { VmStats } from './vm-like.js';
export { commandArgv } from './process-runner.js';
export type { ExecOptions, SpawnOptions } from './process-options.js';
export { RESULT_VM, vmOfResult } from './vm-like.js';
export { mergeEnv } from './agent-transport.js';

export interface VmInfo {
  image: string;
  metadata: ImageMetadata;
  accelerator: Accelerator;
  memoryMiB: number;
  cpus: number;
  bootMs: number;
  consoleLog: string;
  /** Files baked into the image under the mounted volumes: hidden in this VM, as on a provider. */
  shadowed: string[];
  /** Whether this VM was restored from a snapshot, or booted (and saved one for the next start). */
  snapshot: SnapshotUse;
  /** The provider runtime this VM reproduces (what differs: runtime-profile.ts). */
  runtimeVersion: RuntimeProfile;
  /** The requestor's deploy volumes (startVm's `deployVolumes`, runtime 0.5). */
  deployVolumes?: DeployVolumeInfo[];
  /** Its place in a requestor network (startVm's `network`). */
  network?: { ip: string; cidr?: string };
  /** Outbound access was granted (startVm's `outbound`): refusals in outboundRefusals(). */
  outbound?: boolean;
}

export interface VmInternals {
  /** The VM's QEMU and agent channel, from launchQemu. */
  qemu: LaunchedQemu;
  /** Everything the start acquired (QEMU included), released when the VM stops or crashes. */
  resources: ResourceStack;
  logger: Logger;
  volumes: VolumeMount[];
  info: VmInfo;
  /** Its NICs' host side (networks, outbound access). */
  networking?: VmNetworking;
  /** startVm's `env`: added to the image Env for every process (a provider has no such thing). */
  env?: Record<string, string>;
  /** startVm's signal: aborted once the VM runs, it stops the VM. */
  signal?: AbortSignal;
}

/** Each VM's channel and QEMU, for tests that speak the protocol badly or kill QEMU from outside. */
const testAccess = new WeakMap<StartedVm, LaunchedQemu>();

/** @internal Tests only: the VM's agent client (raw requests) and QEMU's pid. Not exported from the package. */
export function vmInternalsForTests(vm: StartedVm): { client: AgentClient; qemuPid: number | undefined } {
  const qemu = testAccess.get(vm)!;
  return { client: qemu.client, qemuPid: qemu.proc.pid };
}

export class StartedVm implements VmLike {
  private stopping: Promise<void> | undefined;
  /** Set as the stop begins: the channel is read from then on (pauseOutput is ignored). */
  private stopRequested = false;
  private crash: GvmiTestError | undefined;
  private readonly client: AgentClient;
  private readonly processes: ProcessRunner<ConsoleStart>;
  readonly volumes: readonly VolumeMount[];
  readonly info: VmInfo;

  constructor(private readonly internals: VmInternals) {
    this.volumes = internals.volumes;
    this.info = internals.info;
    const { client, proc } = internals.qemu;
    this.client = client;
    testAccess.set(this, internals.qemu);
    this.processes = new ProcessRunner(this, new AgentTransport({
      client,
      metadata: this.info.metadata,
      consoleLog: this.info.consoleLog,
      volumes: this.volumes,
      ...(internals.env ? { env: internals.env } : {}),
      assertUsable: () => this.assertUsable(),
      usable: () => !this.crash && !this.stopping,
    }));
    // QEMU ending without being asked to is a crash: explained from the console and its stderr.
    void proc.exited.then(async (exit) => {
      if (this.stopping) return;
      this.markCrashed(await crashError(this.info.consoleLog, exit.exitCode ?? exit.signal ?? 'unknown', await proc.finalStderr()));
      await internals.resources.dispose().catch((error: unknown) => internals.logger.warn({ error }, 'cleaning up after a crash failed'));
    });
    const { signal } = internals;
    if (signal) {
      const onAbort = (): void => void this.stop();
      signal.addEventListener('abort', onAbort, { once: true });
      void proc.exited.then(() => signal.removeEventListener('abort', onAbort));
    }
  }

  private markCrashed(error: GvmiTestError): void {
    this.crash ??= error;
    this.client.close(error);
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  /**
   * What a requestor's `start-entrypoint` does (ya-runtime-vm lib.rs run_entrypoint): the image's
   * Entrypoint followed by its Cmd as one process, BIN the first word as written (no PATH search)
   * and argv[0] its file name, with the image Env and WORKDIR like every run. Upstream's host does
   * not flag it as the entrypoint (no ENT sub-message), so the VM runs on when it exits.
   */
  async startEntrypoint(options: Omit<SpawnOptions, 'pty'> = {}): Promise<GuestProcess> {
    const words = [...this.info.metadata.entrypoint, ...this.info.metadata.cmd];
    if (words.length === 0) {
      throw new GvmiTestError('usage', "start-entrypoint: the image defines no Entrypoint or Cmd (a provider refuses it: \"'start_entrypoint' flag is set but the container does not define an entrypoint!\")", {
        hint: 'add an ENTRYPOINT or CMD to the image, or run a command instead (gvmi-test run)',
      });
    }
    const bin = words[0]!;
    return this.spawn([bin.split('/').pop() || bin, ...words.slice(1)], { ...options, bin });
  }

  /** Starts a process and returns at once; see GuestProcess for output, stdin and the result. */
  spawn(command: string | readonly string[], options: SpawnOptions & { bin?: string } = {}): Promise<GuestProcess> {
    return this.processes.spawn(command, options);
  }

  /**
   * Runs a command to the end. A string runs as `/bin/sh -c <string>`; an array is argv.
   * Resolves for any exit status; rejects when it can't start, times out, or is aborted.
   */
  exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.processes.exec(command, options);
  }

  /** Kills every running process (and waits for them); volumes keep their files. */
  async killProcesses(): Promise<void> {
    this.assertUsable();
    await this.processes.killAll();
  }

  /**
   * Back to a clean slate without a reboot: every running process is killed and every volume
   * directory emptied. (Files written outside volumes stay: only a new VM resets the overlay.)
   */
  async reset(): Promise<void> {
    await this.killProcesses();
    for (const v of this.volumes) await emptyVolume(v);
  }

  async upload(hostPath: string, guestPath: string): Promise<void> {
    this.assertUsable();
    await uploadToVolume(this.volumes, hostPath, guestPath);
  }

  async download(guestPath: string, hostPath: string, options: DownloadOptions = {}): Promise<DownloadReport> {
    this.assertUsable();
    return downloadFromVolume(this.volumes, guestPath, hostPath, options);
  }

  async stats(): Promise<VmStats> {
    this.assertUsable();
    const s = await this.client.stats();
    return {
      overlay: { totalBytes: s.upperTotalBytes, usedBytes: s.upperUsedBytes, freeBytes: s.upperTotalBytes - s.upperUsedBytes },
      memory: { totalBytes: s.memTotalBytes, availableBytes: s.memAvailableBytes },
      uptimeMs: s.uptimeMs,
      runningProcesses: s.runningProcesses,
      // Each ram and storage volume of the deploy, as the guest measures it (with its errors= mode).
      ...(s.deployVolumes.length > 0 ? {
        deployVolumes: s.deployVolumes.map((v) => {
          const errors = this.info.deployVolumes?.find((d) => d.guestPath === v.guestPath)?.errors;
          return { ...v, ...(errors ? { errors } : {}) };
        }),
      } : {}),
    };
  }

  /** The largest files written outside volumes (the overlay's RAM-backed upper layer). */
  async overlayUsage(limit = 10): Promise<UpperUsageEntry[]> {
    this.assertUsable();
    return this.client.upperUsage(limit);
  }

  /**
   * Provider traps this command ran into: a program that could not start, a damaged image, the
   * overlay filling up (with the largest files written outside volumes), output a provider would
   * truncate, a signal's usual cause.
   */
  diagnose(result: ExecResult): Promise<Finding[]> {
    return this.processes.diagnose(result);
  }

  /**
   * Outbound connections the manifest's whitelist refused so far, each with the URL that would
   * allow it (a provider only logs them). Empty without outbound access.
   */
  outboundRefusals(): readonly Refusal[] {
    return this.internals.networking?.refusals() ?? [];
  }

  /** Called for each outbound refusal as it happens (startVm's `outbound`). */
  onOutboundRefused(listener: (refusal: Refusal) => void): void {
    this.internals.networking?.outbound?.onRefused(listener);
  }

  /** A finding for the files this VM's volumes hide, if any. */
  shadowingFinding(): Finding | undefined {
    return shadowingFinding(this.info.shadowed);
  }

  /** Stops reading guest output until resumeOutput(): back-pressure reaches the guest processes. */
  pauseOutput(): void {
    // A VM being stopped must read its channel, or QUIT's answer waits behind unread output.
    if (!this.stopRequested) this.client.pause();
  }

  resumeOutput(): void {
    this.client.resume();
  }

  /** The guest console so far. */
  async console(): Promise<string> {
    return readConsole(this.info.consoleLog);
  }

  async consoleTail(lines = 20): Promise<string> {
    return consoleTail(this.info.consoleLog, lines);
  }

  private assertUsable(): void {
    if (this.crash) throw this.crash;
    if (this.stopping) throw new GvmiTestError('vm.stopped', 'the VM has been stopped');
  }

  /** Powers the guest off and removes temporary files. Safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const { qemu, logger, resources } = this.internals;
    const { client, proc } = qemu;
    qemu.markStopping();
    // Output paused by a consumer that has gone (a closed stdout never drains) would hold QUIT's
    // answer back for its whole timeout: what the guest still writes is read, and dropped by whoever listens.
    this.stopRequested = true;
    client.resume();
    if (!client.closed && !this.crash) {
      await client.quit(3000).catch((error: unknown) => logger.debug({ error }, 'quit not acknowledged'));
    }
    const exited = await Promise.race([
      proc.exited.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 5000).unref()),
    ]);
    // Releasing the resources kills a QEMU that is still there.
    if (!exited) logger.warn('guest did not power off in time; killing QEMU');
    client.close(new GvmiTestError('vm.stopped', 'the VM has been stopped'));
    await resources.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
