/**
 * The process layer every VM shares, local or served: spawn, exec, the limits a caller puts on a
 * process (timeout, abort signal), killing them all, and diagnosing a result. It runs over a
 * ProcessTransport (process-transport.ts), which only starts processes and carries their events.
 */
import type { UpperUsageEntry } from '../agent/agent-client.js';
import { diagnoseResult } from '../diagnostics/run-findings.js';
import type { Finding } from '../diagnostics/finding.js';
import { GvmiTestError } from '../errors.js';
import { GuestProcess, type ExecResult } from './guest-process.js';
import type { ExecOptions, SpawnOptions } from './process-options.js';
import type { ProcessTransport } from './process-transport.js';
import { RESULT_VM } from './vm-like.js';
import type { RuntimeProfile } from '../runtime-profile.js';

export const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024;

/** What the layer reads of the VM it runs processes for (diagnoseResult's needs); results carry the VM. */
export interface RunnerVm {
  readonly volumes: readonly { guestPath: string }[];
  readonly info: { readonly runtimeVersion: RuntimeProfile; readonly metadata: { readonly env: readonly string[] } };
  stats(): Promise<{ overlay: { totalBytes: number; usedBytes: number } }>;
  overlayUsage(limit?: number): Promise<UpperUsageEntry[]>;
}

/** A string runs as `/bin/sh -c <string>`; an array is argv. */
export function commandArgv(command: string | readonly string[]): string[] {
  if (typeof command === 'string') return ['/bin/sh', '-c', command];
  if (command.length === 0) throw new GvmiTestError('usage', 'empty command');
  return [...command];
}

/** exec.timeout: the command outlived its deadline and was killed (its result in details.result). */
export function execTimeoutError(command: readonly string[], timeout: string, result?: ExecResult): GvmiTestError {
  return new GvmiTestError('exec.timeout', `${command.join(' ')}: still running after ${timeout}, killed`, {
    ...(result ? { details: { result } } : {}),
    hint: 'raise the timeout (--timeout / timeoutMs), or look for a command waiting on input or network (there is none on a provider)',
  });
}

export class ProcessRunner<Origin> {
  private readonly running = new Set<GuestProcess>();
  /** Each result's origin, for the transport's own findings. */
  private readonly originOf = new WeakMap<ExecResult, Origin>();

  constructor(private readonly vm: RunnerVm, private readonly transport: ProcessTransport<Origin>) {}

  /** Starts a process and returns at once; see GuestProcess for output, stdin and the result. */
  async spawn(command: string | readonly string[], options: SpawnOptions & { bin?: string } = {}): Promise<GuestProcess> {
    const argv = commandArgv(command);
    const stdinData = options.stdin !== undefined && options.stdin !== 'pipe' ? options.stdin : undefined;
    const wiring = GuestProcess.create(argv, options.maxBuffer ?? DEFAULT_MAX_BUFFER, options.iterate ?? false);
    const started = await this.transport.startProcess({
      argv,
      ...(options.bin !== undefined ? { bin: options.bin } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      stdin: options.stdin !== undefined,
      ...(options.pty ? { pty: options.pty } : {}),
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.gid !== undefined ? { gid: options.gid } : {}),
    }, wiring.sink);
    const { process } = wiring;
    wiring.started(started.id, started.control);
    this.running.add(process);
    // Recorded before anyone else can wait for the result: diagnose() finds it.
    process.result.then((r) => { this.originOf.set(r, started.origin); }, () => {}).finally(() => this.running.delete(process));
    if (stdinData !== undefined) void process.end(stdinData).catch(() => {});
    this.armLimits(process, wiring.timedOut, options);
    return process;
  }

  /**
   * Runs a command to the end. Resolves for any exit status; rejects when it can't start, times
   * out (exec.timeout), or is aborted (exec.aborted).
   */
  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const process = await this.spawn(command, options);
    const result = await process.wait();
    Object.defineProperty(result, RESULT_VM, { value: this.vm, enumerable: false });
    if (result.timedOut) throw execTimeoutError(result.command, `${options.timeoutMs} ms`, result);
    if (options.signal?.aborted) throw new GvmiTestError('exec.aborted', `${result.command.join(' ')}: aborted`, { details: { result } });
    return result;
  }

  /** Kills every process this layer started and waits until they are gone. */
  async killAll(): Promise<void> {
    const running = [...this.running];
    await Promise.all(running.map((p) => p.kill('SIGKILL').catch(() => {})));
    await Promise.all(running.map((p) => p.wait().catch(() => {})));
  }

  /**
   * Provider traps this command ran into: a signal's usual cause, the overlay filling up (with
   * the largest files written outside volumes), output a provider would truncate, the image Env
   * dropped; and what only the transport sees (the local VM: a program that could not start, a
   * damaged image).
   */
  async diagnose(result: ExecResult): Promise<Finding[]> {
    const own = await this.transport.findings(result, this.originOf.get(result));
    return [...own, ...(await diagnoseResult(this.vm, result, this.transport.usable))];
  }

  private armLimits(process: GuestProcess, markTimedOut: () => void, options: SpawnOptions): void {
    const clear: (() => void)[] = [];
    if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
      const timer = setTimeout(() => {
        markTimedOut();
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
}
