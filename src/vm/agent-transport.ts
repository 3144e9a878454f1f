/**
 * The process transport of a VM in this process: RUN_PROCESS and friends over its agent channel.
 * What a provider does to every process is done here: the image's Env (plus startVm's env) and
 * WorkingDir, its numeric USER. It also makes the findings only the local side can: a program
 * that could not start (reading a volume script's `#!` line) and the image damage the guest
 * kernel printed while the process ran.
 */
import { AgentRequestError, type AgentClient, type ProcessListener } from '../agent/agent-client.js';
import { errnoName } from '../agent/errno.js';
import { ExitKind } from '../agent/protocol.js';
import { execFailureFinding, STEP_NAMES } from '../diagnostics/exec-failure.js';
import type { Finding } from '../diagnostics/finding.js';
import { imageCorruptFinding } from '../diagnostics/image-damage.js';
import { GvmiTestError } from '../errors.js';
import type { ImageMetadata } from '../image/container-config.js';
import { signalName } from '../signals.js';
import { consoleSize, findImageErrors, readConsoleFrom } from './console-log.js';
import type { ExecResult } from './guest-process.js';
import type { ProcessRequest, ProcessSink, ProcessTransport, StartedProcess } from './process-transport.js';
import { providerUser } from './provider-user.js';
import { readHead } from './read-head.js';
import { locateInVolumes } from './transfer.js';
import type { VolumeMount } from './volumes.js';

/** How long the findings give the console to catch up with a process killed by a signal. */
const CONSOLE_SETTLE_MS = 200;

/** Where the console stood when a process started: what it printed after is that process's. */
export type ConsoleStart = Promise<number>;

export interface AgentTransportContext {
  client: AgentClient;
  metadata: ImageMetadata;
  consoleLog: string;
  volumes: readonly VolumeMount[];
  /** startVm's `env`: added to the image Env for every process (a provider has no such thing). */
  env?: Record<string, string>;
  /** Throws when the VM can no longer run anything (stopped, crashed). */
  assertUsable(): void;
  usable(): boolean;
}

export function mergeEnv(imageEnv: readonly string[], overrides: Record<string, string> = {}): string[] {
  const env = new Map<string, string>();
  for (const entry of imageEnv) env.set(entry.split('=', 1)[0]!, entry);
  for (const [k, v] of Object.entries(overrides)) env.set(k, `${k}=${v}`);
  return [...env.values()];
}

export class AgentTransport implements ProcessTransport<ConsoleStart> {
  constructor(private readonly vm: AgentTransportContext) {}

  get usable(): boolean {
    return this.vm.usable();
  }

  async startProcess(request: ProcessRequest, sink: ProcessSink): Promise<StartedProcess<ConsoleStart>> {
    this.vm.assertUsable();
    const { client, metadata } = this.vm;
    const cwd = request.cwd ?? metadata.workingDir;
    const origin = consoleSize(this.vm.consoleLog);
    const listener: ProcessListener = {
      output: (fd, data) => sink.output(fd === 2 ? 'stderr' : 'stdout', data),
      execFailed: (f) => sink.execFailed({ step: STEP_NAMES[f.step] ?? String(f.step), errno: f.errno, errnoName: errnoName(f.errno), cwd }),
      died: (status, kind) => sink.exited(kind === ExitKind.EXITED ? { exitCode: status, signal: null } : { exitCode: null, signal: signalName(status) }),
      lost: (error) => sink.lost(error),
    };
    let id: bigint;
    try {
      id = await client.runProcess({
        ...(request.bin !== undefined ? { bin: request.bin } : {}),
        argv: request.argv,
        env: mergeEnv(metadata.env, { ...this.vm.env, ...request.env }),
        cwd,
        stdinPipe: request.stdin,
        ...(request.pty ? { pty: request.pty } : {}),
        // As a provider: every run as the image's numeric USER (uid:gid), else root.
        uid: request.uid ?? providerUser(metadata.user).uid,
        gid: request.gid ?? providerUser(metadata.user).gid,
      }, listener);
    } catch (error) {
      throw explainSpawnFailure(error, request.argv);
    }
    return {
      id,
      origin,
      control: {
        signal: (signo) => client.signal(id, signo),
        putInput: (data, eof) => client.putInput(id, data, eof),
        ...(request.pty ? { resize: (rows: number, cols: number) => client.resize(id, rows, cols) } : {}),
      },
    };
  }

  async findings(result: ExecResult, origin: ConsoleStart | undefined): Promise<Finding[]> {
    const findings: Finding[] = [];
    if (result.execFailure) findings.push(await this.execFailureFinding(result));
    const damage = await this.imageErrorsSince(result, (await origin) ?? 0);
    if (damage.length > 0) findings.push(imageCorruptFinding(damage));
    return findings;
  }

  /** Errors reading the image the guest kernel printed from `start` on (the whole console for a result of unknown origin). */
  private async imageErrorsSince(result: ExecResult, start: number): Promise<string[]> {
    const found = findImageErrors(await readConsoleFrom(this.vm.consoleLog, start));
    if (found.length > 0 || !result.signal) return found;
    // Killed by a signal (SIGBUS, when a mapped file could not be read): the kernel's lines are
    // printed before the signal, but may reach the console file a moment after its death does.
    await new Promise((r) => setTimeout(r, CONSOLE_SETTLE_MS));
    return findImageErrors(await readConsoleFrom(this.vm.consoleLog, start));
  }

  /** Explains a process that could not start; reads a volume script's `#!` line when it can. */
  private async execFailureFinding(result: ExecResult): Promise<Finding> {
    const f = result.execFailure!;
    const step = Number(Object.entries(STEP_NAMES).find(([, name]) => name === f.step)?.[0] ?? 0);
    const program = result.command[0] ?? '';
    let shebang: string | undefined;
    try {
      const { mount, relative } = locateInVolumes(this.vm.volumes, program);
      const head = await readHead(`${mount.hostPath}/${relative}`, 256);
      if (head.startsWith('#!')) shebang = head.split('\n', 1)[0];
    } catch { /* not in a volume, or unreadable: the image is the authority */ }
    return execFailureFinding({ step, errno: f.errno, argv: result.command, cwd: f.cwd, ...(shebang ? { shebang } : {}) });
  }
}

/**
 * What is left to fail at RUN_PROCESS itself, as upstream answers it: a FILE redirect that
 * cannot be opened, resources. (A missing program or working directory is not an error there:
 * the process starts and dies with 9, and `execFailure` on its result says why.)
 */
function explainSpawnFailure(error: unknown, argv: readonly string[]): unknown {
  if (!(error instanceof AgentRequestError)) return error;
  const program = argv[0] ?? '';
  return new GvmiTestError('exec.failed', `cannot run ${program}: ${error.message.replace(/^[^:]*: /, '')}`, { details: { errno: error.errno, argv: [...argv] }, cause: error });
}
