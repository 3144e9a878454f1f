/**
 * A booted VM: run commands, move files through volumes, read stats, stop. `await using vm =
 * await startVm(...)` stops it at the end of the scope.
 */
import type { Logger } from 'pino';
import type { AgentClient, AgentStats, UpperUsageEntry } from '../agent/agent-client.js';
import { AgentRequestError } from '../agent/agent-client.js';
import { GvmiTestError } from '../errors.js';
import type { ImageMetadata } from '../image/container-config.js';
import type { Accelerator } from '../qemu/accelerator.js';
import { consoleSize, consoleTail, findImageErrors, readConsole, readConsoleFrom } from './console-log.js';
import { imageCorruptFinding } from '../diagnostics/image-damage.js';
import { GuestProcess, type ExecResult } from './guest-process.js';
import { downloadFromVolume, emptyVolume, uploadToVolume, type DownloadOptions, type DownloadReport } from './transfer.js';
import type { VolumeMount } from './volumes.js';
import type { Finding } from '../diagnostics/finding.js';
import type { VmLike } from './vm-like.js';
import { diagnoseResult, shadowingFinding } from '../diagnostics/run-findings.js';
import { execFailureFinding, STEP_NAMES } from '../diagnostics/exec-failure.js';
import { errnoName } from '../agent/errno.js';
import { locateInVolumes } from './transfer.js';
import { readHead } from './read-head.js';
import { providerUser } from './provider-user.js';
import type { LaunchedQemu } from './launch-qemu.js';
import type { ResourceStack } from './resource-stack.js';
import type { SnapshotUse } from './snapshot-policy.js';
import { crashError } from './vm-failures.js';

export type { SnapshotUse } from './snapshot-policy.js';

export interface ExecOptions {
  /** Added to (and overriding) the image's Env. */
  env?: Record<string, string>;
  /** Defaults to the image's WorkingDir, as on a provider. */
  cwd?: string;
  /** Bytes for the process's stdin; without it stdin is /dev/null. */
  stdin?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
  uid?: number;
  gid?: number;
  /** Output kept in memory per process (both streams); byte counts stay exact past it. */
  maxBuffer?: number;
}

export interface SpawnOptions extends Omit<ExecOptions, 'stdin'> {
  /** Keep stdin open for write()/end(). */
  stdin?: 'pipe' | string | Buffer;
  /** Make the process async-iterable over its output chunks. */
  iterate?: boolean;
  /**
   * A pseudo-terminal of this size in the guest as the process's stdin/stdout/stderr (for
   * interactive programs: shells with job control, editors). Output comes as stdout; write()
   * types into it; resize() changes its size.
   */
  pty?: { rows: number; cols: number };
}

export interface VmStats {
  overlay: { totalBytes: number; usedBytes: number; freeBytes: number };
  memory: { totalBytes: number; availableBytes: number };
  uptimeMs: number;
  runningProcesses: number;
}

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
  runtimeVersion: import('../runtime-profile.js').RuntimeProfile;
}

export interface VmInternals {
  /** The VM's QEMU and agent channel, from launchQemu. */
  qemu: LaunchedQemu;
  /** Everything the start acquired (QEMU included), released when the VM stops or crashes. */
  resources: ResourceStack;
  logger: Logger;
  volumes: VolumeMount[];
  info: VmInfo;
  /** startVm's `env`: added to the image Env for every process (a provider has no such thing). */
  env?: Record<string, string>;
  /** startVm's signal: aborted once the VM runs, it stops the VM. */
  signal?: AbortSignal;
}

const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024;
/** How long diagnose() gives the console to catch up with a process killed by a signal. */
const CONSOLE_SETTLE_MS = 200;

/** Results of vm.exec() carry their VM under this key (not enumerable), for matchers' diagnostics. */
export const RESULT_VM = Symbol.for('gvmi-test.result-vm');

export function vmOfResult(result: ExecResult): VmLike | undefined {
  return (result as unknown as Record<symbol, VmLike | undefined>)[RESULT_VM];
}

export function mergeEnv(imageEnv: readonly string[], overrides: Record<string, string> = {}): string[] {
  const env = new Map<string, string>();
  for (const entry of imageEnv) env.set(entry.split('=', 1)[0]!, entry);
  for (const [k, v] of Object.entries(overrides)) env.set(k, `${k}=${v}`);
  return [...env.values()];
}

export function commandArgv(command: string | readonly string[]): string[] {
  if (typeof command === 'string') return ['/bin/sh', '-c', command];
  if (command.length === 0) throw new GvmiTestError('usage', 'empty command');
  return [...command];
}

/** Each VM's channel and QEMU, for tests that speak the protocol badly or kill QEMU from outside. */
const testAccess = new WeakMap<StartedVm, LaunchedQemu>();

/** @internal Tests only: the VM's agent client (raw requests) and QEMU's pid. Not exported from the package. */
export function vmInternalsForTests(vm: StartedVm): { client: AgentClient; qemuPid: number | undefined } {
  const qemu = testAccess.get(vm)!;
  return { client: qemu.client, qemuPid: qemu.proc.pid };
}

export class StartedVm implements VmLike {
  private readonly processes = new Map<bigint, GuestProcess>();
  /** The working directory each process was started in (to explain one that could not start). */
  private readonly cwdOf = new WeakMap<GuestProcess, string>();
  /** Where the console stood when each result's process started: what it printed after is its. */
  private readonly consoleStartOf = new WeakMap<ExecResult, Promise<number>>();
  private stopping: Promise<void> | undefined;
  private crash: GvmiTestError | undefined;
  readonly volumes: readonly VolumeMount[];
  readonly info: VmInfo;

  private readonly client: AgentClient;

  constructor(private readonly internals: VmInternals) {
    this.volumes = internals.volumes;
    this.info = internals.info;
    const { client, proc } = internals.qemu;
    this.client = client;
    testAccess.set(this, internals.qemu);
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
    client.on('output', (id, fd, data) => this.processes.get(id)?.pushOutput(fd, data));
    client.on('exec-failed', (id, f) => {
      const p = this.processes.get(id);
      p?.setExecFailure({ step: STEP_NAMES[f.step] ?? String(f.step), errno: f.errno, errnoName: errnoName(f.errno), cwd: this.cwdOf.get(p) ?? '/' });
    });
    client.on('died', (id, status, kind) => {
      const p = this.processes.get(id);
      this.processes.delete(id);
      p?.finish(status, kind);
    });
    client.on('closed', (error) => {
      const reason = this.crash ?? error;
      for (const p of this.processes.values()) p.fail(reason);
      this.processes.clear();
    });
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
  async spawn(command: string | readonly string[], options: SpawnOptions & { bin?: string } = {}): Promise<GuestProcess> {
    this.assertUsable();
    const argv = commandArgv(command);
    const { client } = this;
    const stdinData = options.stdin !== undefined && options.stdin !== 'pipe' ? options.stdin : undefined;
    const consoleStart = consoleSize(this.info.consoleLog);
    let id: bigint;
    try {
      id = await client.runProcess({
        ...(options.bin !== undefined ? { bin: options.bin } : {}),
        argv,
        env: mergeEnv(this.info.metadata.env, { ...this.internals.env, ...options.env }),
        cwd: options.cwd ?? this.info.metadata.workingDir,
        stdinPipe: options.stdin !== undefined,
        ...(options.pty ? { pty: options.pty } : {}),
        // As a provider: every run as the image's numeric USER (uid:gid), else root.
        uid: options.uid ?? providerUser(this.info.metadata.user).uid,
        gid: options.gid ?? providerUser(this.info.metadata.user).gid,
      });
    } catch (error) {
      throw this.explainSpawnFailure(error, argv);
    }
    const process = new GuestProcess(id, argv, {
      signal: (signo) => client.signal(id, signo),
      putInput: (data, eof) => client.putInput(id, data, eof),
      ...(options.pty ? { resize: (rows: number, cols: number) => client.resize(id, rows, cols) } : {}),
    }, options.maxBuffer ?? DEFAULT_MAX_BUFFER, options.iterate ?? false);
    this.processes.set(id, process);
    this.cwdOf.set(process, options.cwd ?? this.info.metadata.workingDir);
    // Registered before anyone else can wait for the result: diagnose() finds it.
    process.result.then((r) => { this.consoleStartOf.set(r, consoleStart); }, () => {});
    client.claimProcess(id);
    if (stdinData !== undefined) {
      void process.end(stdinData).catch((error: unknown) => this.internals.logger.debug({ error }, 'stdin write failed'));
    }
    this.armLimits(process, options);
    return process;
  }

  /**
   * What is left to fail at RUN_PROCESS itself, as upstream answers it: a FILE redirect that
   * cannot be opened, resources. (A missing program or working directory is not an error there:
   * the process starts and dies with 9, and `execFailure` on its result says why.)
   */
  private explainSpawnFailure(error: unknown, argv: string[]): unknown {
    if (!(error instanceof AgentRequestError)) return error;
    const program = argv[0] ?? '';
    return new GvmiTestError('exec.failed', `cannot run ${program}: ${error.message.replace(/^[^:]*: /, '')}`, { details: { errno: error.errno, argv }, cause: error });
  }

  private armLimits(process: GuestProcess, options: SpawnOptions): void {
    const clear: (() => void)[] = [];
    if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
      const timer = setTimeout(() => {
        process.timedOut = true;
        // SIGKILL to the whole group in the guest; the VM stays usable.
        void process.kill('SIGKILL').catch(() => {});
      }, options.timeoutMs);
      clear.push(() => clearTimeout(timer));
    }
    if (options.signal) {
      const onAbort = (): void => void process.kill('SIGKILL').catch(() => {});
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
      clear.push(() => options.signal?.removeEventListener('abort', onAbort));
    }
    const done = (): void => clear.forEach((c) => c());
    process.result.then(done, done);
  }

  /**
   * Runs a command to the end. A string runs as `/bin/sh -c <string>`; an array is argv.
   * Resolves for any exit status; rejects when it can't start, times out, or is aborted.
   */
  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const process = await this.spawn(command, options);
    const result = await process.wait();
    Object.defineProperty(result, RESULT_VM, { value: this, enumerable: false });
    if (result.timedOut) {
      throw new GvmiTestError('exec.timeout', `${result.command.join(' ')}: still running after ${options.timeoutMs} ms, killed`, {
        details: { result },
        hint: 'raise the timeout (--timeout / timeoutMs), or look for a command waiting on input or network',
      });
    }
    if (options.signal?.aborted) {
      throw new GvmiTestError('exec.aborted', `${result.command.join(' ')}: aborted`, { details: { result } });
    }
    return result;
  }

  /**
   * Back to a clean slate without a reboot: every running process is killed and every volume
   * directory emptied. (Files written outside volumes stay: only a new VM resets the overlay.)
   */
  async reset(): Promise<void> {
    this.assertUsable();
    const running = [...this.processes.values()];
    await Promise.all(running.map((p) => p.kill('SIGKILL').catch(() => {})));
    await Promise.all(running.map((p) => p.wait().catch(() => {})));
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
    const s: AgentStats = await this.client.stats();
    return {
      overlay: { totalBytes: s.upperTotalBytes, usedBytes: s.upperUsedBytes, freeBytes: s.upperTotalBytes - s.upperUsedBytes },
      memory: { totalBytes: s.memTotalBytes, availableBytes: s.memAvailableBytes },
      uptimeMs: s.uptimeMs,
      runningProcesses: s.runningProcesses,
    };
  }

  /** The largest files written outside volumes (the overlay's RAM-backed upper layer). */
  async overlayUsage(limit = 10): Promise<UpperUsageEntry[]> {
    this.assertUsable();
    return this.client.upperUsage(limit);
  }

  /**
   * Provider traps this command ran into: the overlay filling up (with the largest files written
   * outside volumes), output a provider would truncate.
   */
  async diagnose(result: ExecResult): Promise<Finding[]> {
    const findings = await diagnoseResult(this, result, !this.crash && !this.stopping);
    const damage = await this.imageErrorsSince(result);
    if (damage.length > 0) findings.unshift(imageCorruptFinding(damage));
    if (result.execFailure) findings.unshift(await this.execFailureFinding(result));
    return findings;
  }

  /**
   * Errors reading the image that the guest kernel printed while this result's command ran (from
   * its start on; the whole console for a result of unknown origin).
   */
  private async imageErrorsSince(result: ExecResult): Promise<string[]> {
    const start = (await this.consoleStartOf.get(result)) ?? 0;
    const found = findImageErrors(await readConsoleFrom(this.info.consoleLog, start));
    if (found.length > 0 || !result.signal) return found;
    // Killed by a signal (SIGBUS, when a mapped file could not be read): the kernel's lines are
    // printed before the signal, but may reach the console file a moment after its death does.
    await new Promise((r) => setTimeout(r, CONSOLE_SETTLE_MS));
    return findImageErrors(await readConsoleFrom(this.info.consoleLog, start));
  }

  /** Explains a process that could not start; reads a volume script's `#!` line when it can. */
  private async execFailureFinding(result: ExecResult): Promise<Finding> {
    const f = result.execFailure!;
    const step = Number(Object.entries(STEP_NAMES).find(([, name]) => name === f.step)?.[0] ?? 0);
    const program = result.command[0] ?? '';
    let shebang: string | undefined;
    try {
      const { mount, relative } = locateInVolumes(this.volumes, program);
      const head = await readHead(`${mount.hostPath}/${relative}`, 256);
      if (head.startsWith('#!')) shebang = head.split('\n', 1)[0];
    } catch { /* not in a volume, or unreadable: the image is the authority */ }
    return execFailureFinding({ step, errno: f.errno, argv: result.command, cwd: f.cwd, ...(shebang ? { shebang } : {}) });
  }

  /** A finding for the files this VM's volumes hide, if any. */
  shadowingFinding(): Finding | undefined {
    return shadowingFinding(this.info.shadowed);
  }

  /** Stops reading guest output until resumeOutput(): back-pressure reaches the guest processes. */
  pauseOutput(): void {
    this.client.pause();
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
