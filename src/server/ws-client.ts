/**
 * connectVm(url): a VM served by `gvmi-test serve`, with the surface of a StartedVm, so code and
 * the vitest fixture work unchanged against it (e.g. one VM booted in a vitest globalSetup and
 * shared by every worker). `stop()` disconnects; `shutdown()` stops the served VM itself.
 */
import { lstat, readFile, symlink, unlink, writeFile, chmod, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { WebSocket } from 'ws';
import type { UpperUsageEntry } from '../agent/agent-client.js';
import { ExitKind } from '../agent/protocol.js';
import type { Finding } from '../diagnostics/finding.js';
import { diagnoseResult, shadowingFinding } from '../diagnostics/run-findings.js';
import { GvmiTestError, type ErrorCode } from '../errors.js';
import { GuestProcess, signalName, signalNumber, type ExecResult } from '../vm/guest-process.js';
import { commandArgv, RESULT_VM, type ExecOptions, type SpawnOptions, type VmStats } from '../vm/started-vm.js';
import type { VmLike, VmLikeInfo } from '../vm/vm-like.js';
import type { ClientMessage, ServerMessage } from './ws-protocol.js';

const UPLOAD_CHUNK = 1024 * 1024;

interface Waiter {
  resolve: (m: ServerMessage) => void;
  reject: (e: Error) => void;
  onData?: (m: ServerMessage) => void;
}

function remoteError(m: Extract<ServerMessage, { event: 'error' }>): GvmiTestError {
  return new GvmiTestError(m.code as ErrorCode, m.message, m.hint ? { hint: m.hint } : {});
}

export class RemoteVm implements VmLike {
  private nextId = 1;
  private readonly waiters = new Map<string, Waiter>();
  private readonly processes = new Map<string, GuestProcess>();
  private closedError: GvmiTestError | undefined;
  info!: VmLikeInfo;
  volumes: { guestPath: string; hostPath: string }[] = [];
  private lastConsoleTail = '';

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => this.onMessage(JSON.parse(String(data)) as ServerMessage));
    ws.on('close', (code, reason) => this.onClose(new GvmiTestError('vm.stopped', `the served VM closed the connection (${code}${reason.length ? ` ${reason}` : ''})`)));
    ws.on('error', (error) => this.onClose(new GvmiTestError('vm.stopped', `connection to the served VM failed: ${error.message}`)));
  }

  static async connect(url: string): Promise<RemoteVm> {
    const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new GvmiTestError('usage', `the server refused the connection: ${res.statusCode} ${res.statusMessage ?? ''}`.trim(), {
        hint: res.statusCode === 401 ? 'the token in the URL is missing or wrong: use the URL gvmi-test serve printed' : undefined,
      })));
      ws.once('error', (e) => reject(new GvmiTestError('usage', `cannot connect to ${url.replace(/token=[^&]+/, 'token=…')}: ${e.message}`)));
    });
    const vm = new RemoteVm(ws);
    await vm.refreshInfo();
    return vm;
  }

  private async refreshInfo(): Promise<void> {
    const m = await this.request({ op: 'info', id: this.id() });
    if (m.event !== 'info') throw new GvmiTestError('agent.protocol', `unexpected ${m.event}`);
    const info = m.info as VmLikeInfo & { volumes: { guestPath: string; hostPath: string }[]; consoleTail: string };
    this.info = { image: info.image, metadata: info.metadata, shadowed: info.shadowed, accelerator: info.accelerator };
    this.volumes = info.volumes;
    this.lastConsoleTail = info.consoleTail;
  }

  get stopped(): boolean {
    return this.closedError !== undefined;
  }

  private id(): string {
    return `c${this.nextId++}`;
  }

  private send(m: ClientMessage): void {
    if (this.closedError) throw this.closedError;
    this.ws.send(JSON.stringify(m));
  }

  private request(m: ClientMessage, onData?: (m: ServerMessage) => void): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      this.waiters.set(m.id, { resolve, reject, ...(onData ? { onData } : {}) });
      try {
        this.send(m);
      } catch (e) {
        this.waiters.delete(m.id);
        reject(e as Error);
      }
    });
  }

  private onMessage(m: ServerMessage): void {
    if (m.event === 'stopping') return;
    const id = 'id' in m ? m.id : undefined;
    if (id === undefined) return;
    const process = this.processes.get(id);
    // the caller attaches its listeners after `started` resolves: hold what follows one turn
    if (process && m.event === 'started') process.holdOneTurn();
    if (process) {
      if (m.event === 'stdout' || m.event === 'stderr') process.pushOutput(m.event === 'stdout' ? 1 : 2, Buffer.from(m.data, 'base64'));
      else if (m.event === 'exit') {
        this.processes.delete(id);
        process.timedOut = m.timedOut;
        if (m.signal) process.finish(signalNumber(m.signal), ExitKind.KILLED);
        else process.finish(m.exitCode ?? 0, ExitKind.EXITED);
      } else if (m.event === 'error') {
        this.processes.delete(id);
        process.fail(remoteError(m));
      }
    }
    const waiter = this.waiters.get(id);
    if (!waiter) return;
    if (m.event === 'data' || m.event === 'stdout' || m.event === 'stderr' || m.event === 'exit') {
      waiter.onData?.(m);
      return;
    }
    this.waiters.delete(id);
    if (m.event === 'error') waiter.reject(remoteError(m));
    else waiter.resolve(m);
  }

  private onClose(error: GvmiTestError): void {
    if (this.closedError) return;
    this.closedError = error;
    for (const w of this.waiters.values()) w.reject(error);
    this.waiters.clear();
    for (const p of this.processes.values()) p.fail(error);
    this.processes.clear();
  }

  async spawn(command: string | readonly string[], options: SpawnOptions = {}): Promise<GuestProcess> {
    const id = this.id();
    const argv = commandArgv(command);
    const stdinData = options.stdin !== undefined && options.stdin !== 'pipe' ? options.stdin : undefined;
    const process = new GuestProcess(0n, argv, {
      signal: async (signo) => { await this.request({ op: 'signal', id, signal: signalName(signo) }).catch(() => {}); },
      putInput: async (data, eof) => this.send({ op: 'stdin', id, data: data.toString('base64'), ...(eof ? { eof: true } : {}) }),
    }, options.maxBuffer ?? 64 * 1024 * 1024, options.iterate ?? false);
    this.processes.set(id, process);
    try {
      await this.request({
        op: 'exec', id, command: argv,
        ...(options.env ? { env: options.env } : {}),
        ...(options.cwd ? { cwd: options.cwd } : {}),
        ...(options.stdin !== undefined ? { stdin: true } : {}),
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      });
    } catch (error) {
      this.processes.delete(id);
      throw error;
    }
    if (stdinData !== undefined) await process.end(stdinData);
    if (options.signal) {
      const onAbort = (): void => void process.kill('SIGKILL').catch(() => {});
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    }
    return process;
  }

  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const process = await this.spawn(command, options);
    const result = await process.wait();
    Object.defineProperty(result, RESULT_VM, { value: this, enumerable: false });
    if (result.timedOut) {
      throw new GvmiTestError('exec.timeout', `${result.command.join(' ')}: still running after ${options.timeoutMs} ms, killed`, { details: { result } });
    }
    if (options.signal?.aborted) throw new GvmiTestError('exec.aborted', `${result.command.join(' ')}: aborted`, { details: { result } });
    return result;
  }

  async upload(hostPath: string, guestPath: string): Promise<void> {
    const st = await lstat(hostPath);
    if (!st.isFile()) throw new GvmiTestError('transfer.failed', `${hostPath}: only regular files can be uploaded to a served VM`);
    const content = await readFile(hostPath);
    const id = this.id();
    // The first error for this id (e.g. not under a volume) rejects; later ones are ignored.
    const outcome = new Promise<ServerMessage>((resolve, reject) => this.waiters.set(id, { resolve, reject }));
    try {
      let offset = 0;
      do {
        this.send({ op: 'upload', id, path: guestPath, offset, data: content.subarray(offset, offset + UPLOAD_CHUNK).toString('base64') });
        offset += UPLOAD_CHUNK;
      } while (offset < content.length);
      this.send({ op: 'upload-end', id });
    } catch (error) {
      this.waiters.delete(id);
      throw error;
    }
    await outcome;
  }

  async download(guestPath: string, hostPath: string): Promise<{ size: number }> {
    const chunks: Buffer[] = [];
    const m = await this.request({ op: 'download', id: this.id(), path: guestPath }, (d) => {
      if (d.event === 'data') chunks.push(Buffer.from(d.data, 'base64'));
    });
    if (m.event !== 'downloaded') throw new GvmiTestError('agent.protocol', `unexpected ${m.event}`);
    await mkdir(dirname(hostPath), { recursive: true });
    await unlink(hostPath).catch(() => {});
    if (m.symlink !== undefined) {
      await symlink(m.symlink, hostPath);
      return { size: 0 };
    }
    await writeFile(hostPath, Buffer.concat(chunks));
    await chmod(hostPath, m.mode);
    return { size: m.size };
  }

  async stats(): Promise<VmStats> {
    const m = await this.request({ op: 'stats', id: this.id() });
    if (m.event !== 'stats') throw new GvmiTestError('agent.protocol', `unexpected ${m.event}`);
    return m.stats as VmStats;
  }

  async overlayUsage(): Promise<UpperUsageEntry[]> {
    const m = await this.request({ op: 'stats', id: this.id() });
    return (m as { stats: { overlayUsage: UpperUsageEntry[] } }).stats.overlayUsage;
  }

  async consoleTail(): Promise<string> {
    if (!this.stopped) await this.refreshInfo().catch(() => {});
    return this.lastConsoleTail;
  }

  diagnose(result: ExecResult): Promise<Finding[]> {
    return diagnoseResult(this, result, !this.stopped);
  }

  shadowingFinding(): Finding | undefined {
    return shadowingFinding(this.info.shadowed);
  }

  /** Kills this connection's processes. Volumes belong to the server's VM and are left alone. */
  async reset(): Promise<void> {
    await Promise.all([...this.processes.values()].map((p) => p.kill('SIGKILL').catch(() => {})));
  }

  /** Disconnects (this connection's processes are killed); the served VM keeps running. */
  async stop(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((r) => this.ws.once('close', () => r()));
    this.ws.close(1000);
    await closed;
  }

  /** Stops the served VM itself (for every client). */
  async shutdown(): Promise<void> {
    await this.request({ op: 'stop', id: this.id() }).catch(() => {});
    await this.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

export function connectVm(url: string): Promise<RemoteVm> {
  return RemoteVm.connect(url);
}
