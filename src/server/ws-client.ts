/**
 * connectVm(url): a VM served by `gvmi-test serve`, a VmLike as a StartedVm is, so code and the
 * vitest fixture work unchanged against it (e.g. one VM booted in a vitest globalSetup and shared
 * by every worker). Processes run through the same process layer as a local VM's
 * (process-runner.ts); this connection is its transport. `disconnect()` closes the connection;
 * `shutdown()` stops the served VM itself.
 */
import { randomBytes } from 'node:crypto';
import { lstat, open, rename, symlink, unlink, chmod, mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { WebSocket } from 'ws';
import type { UpperUsageEntry } from '../agent/agent-client.js';
import { chunkInput } from '../agent/codec.js';
import type { Finding } from '../diagnostics/finding.js';
import { shadowingFinding } from '../diagnostics/run-findings.js';
import { GvmiTestError, type ErrorCode } from '../errors.js';
import { signalName } from '../signals.js';
import type { ExecResult, GuestProcess } from '../vm/guest-process.js';
import type { ExecOptions, SpawnOptions } from '../vm/process-options.js';
import { ProcessRunner } from '../vm/process-runner.js';
import type { ProcessRequest, ProcessSink, ProcessTransport, StartedProcess } from '../vm/process-transport.js';
import type { DownloadReport } from '../vm/transfer.js';
import type { VmLike, VmLikeInfo, VmStats } from '../vm/vm-like.js';
import { sendPaced } from './paced-send.js';
import { DOWNLOAD_CHUNK_BYTES, type ClientMessage, type ServerMessage } from './ws-protocol.js';

const UPLOAD_CHUNK = 1024 * 1024;
/** Downloaded bytes not yet on disk above which the server is not read from. */
const WRITE_HIGH_WATER_BYTES = 16 * 1024 * 1024;
const ZEROS = Buffer.alloc(DOWNLOAD_CHUNK_BYTES);

interface Waiter {
  resolve: (m: ServerMessage) => void;
  reject: (e: Error) => void;
  onData?: (m: ServerMessage) => void;
}

function remoteError(m: Extract<ServerMessage, { event: 'error' }>): GvmiTestError {
  return new GvmiTestError(m.code as ErrorCode, m.message, m.hint ? { hint: m.hint } : {});
}

/** A download from a served VM: one file (or link), and its size. */
export interface RemoteDownloadReport extends DownloadReport {
  size: number;
}

export class RemoteVm implements VmLike {
  private nextId = 1;
  private readonly waiters = new Map<string, Waiter>();
  /** Where each running process's events go, by request id, from the exec on. */
  private readonly sinks = new Map<string, ProcessSink>();
  private readonly processes: ProcessRunner<undefined>;
  private closedError: GvmiTestError | undefined;
  info!: VmLikeInfo;
  volumes: { guestPath: string; hostPath: string }[] = [];
  private lastConsoleTail = '';

  private constructor(private readonly ws: WebSocket) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const vm = this;
    const transport: ProcessTransport<undefined> = {
      startProcess: (request, sink) => vm.startProcess(request, sink),
      // The console and the volumes are the server's: only what every VM reports is diagnosed.
      findings: async () => [],
      get usable() { return !vm.stopped; },
    };
    this.processes = new ProcessRunner(this, transport);
    ws.on('message', (data) => this.onMessage(JSON.parse(String(data)) as ServerMessage));
    ws.on('close', (code, reason) => this.onClose(new GvmiTestError('vm.stopped', `the served VM closed the connection (${code}${reason.length ? ` ${reason}` : ''})`)));
    ws.on('error', (error) => this.onClose(new GvmiTestError('vm.stopped', `connection to the served VM failed: ${error.message}`)));
  }

  static async connect(url: string): Promise<RemoteVm> {
    const shown = url.replace(/token=[^&]+/, 'token=…');
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
    } catch (error) {
      throw new GvmiTestError('usage', `${shown}: not the URL of a served VM: ${(error as Error).message}`, {
        hint: 'use the ws:// URL gvmi-test serve printed (or wrote to its --url-file)',
      });
    }
    // Failing to connect is neither a usage error nor the VM's: its own code (connect.*), so a
    // script can tell "no server there (yet)" from everything else.
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (req, res) => {
        req.destroy();
        reject(new GvmiTestError('connect.refused', `the server at ${shown} refused the connection: ${res.statusCode} ${res.statusMessage ?? ''}`.trim(), {
          hint: res.statusCode === 401 ? 'the token in the URL is missing or wrong: use the URL gvmi-test serve printed'
            : res.statusCode === 403 ? 'the server refuses connections that carry an Origin header (browser pages)' : undefined,
        }));
      });
      // `on`: an abandoned handshake may report more errors, which must not go unhandled.
      ws.on('error', (e) => reject(new GvmiTestError('connect.failed', `cannot connect to ${shown}: ${e.message}`, {
        hint: 'is gvmi-test serve still running? Its URL changes with every start: use the one it printed (or wrote to its --url-file) last',
      })));
    });
    const vm = new RemoteVm(ws);
    await vm.refreshInfo();
    return vm;
  }

  private async refreshInfo(): Promise<void> {
    const m = await this.request({ op: 'info', id: this.id() });
    if (m.event !== 'info') throw new GvmiTestError('agent.protocol', `unexpected ${m.event}`);
    const info = m.info as VmLikeInfo & { volumes: { guestPath: string; hostPath: string }[]; consoleTail: string };
    // A server from before runtime profiles ran what is now 0.4.
    this.info = { image: info.image, metadata: info.metadata, shadowed: info.shadowed, accelerator: info.accelerator, runtimeVersion: info.runtimeVersion ?? '0.4' };
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
    const sink = this.sinks.get(id);
    if (sink) {
      if (m.event === 'stdout' || m.event === 'stderr') sink.output(m.event, Buffer.from(m.data, 'base64'));
      else if (m.event === 'exit') {
        this.sinks.delete(id);
        sink.exited({ exitCode: m.exitCode, signal: m.signal, timedOut: m.timedOut });
      } else if (m.event === 'error') {
        this.sinks.delete(id);
        sink.lost(remoteError(m));
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
    const orphaned = [...this.sinks.values()];
    this.sinks.clear();
    for (const sink of orphaned) sink.lost(error);
  }

  /** The process transport: an exec request; its events go to `sink` from the first one on. */
  private async startProcess(request: ProcessRequest, sink: ProcessSink): Promise<StartedProcess<undefined>> {
    const unsupported = [request.pty && 'a terminal (pty)', request.uid !== undefined && 'uid', request.gid !== undefined && 'gid', request.bin !== undefined && 'bin'].filter(Boolean);
    if (unsupported.length > 0) {
      throw new GvmiTestError('usage', `a served VM cannot be given ${unsupported.join(', ')} for a process (docs/ws-protocol.md)`, {
        hint: 'use a VM started in this process (startVm) for that',
      });
    }
    const id = this.id();
    this.sinks.set(id, sink);
    try {
      await this.request({
        op: 'exec', id, command: request.argv,
        ...(request.env ? { env: request.env } : {}),
        ...(request.cwd ? { cwd: request.cwd } : {}),
        ...(request.stdin ? { stdin: true } : {}),
      });
    } catch (error) {
      this.sinks.delete(id);
      throw error;
    }
    return {
      id: 0n,
      origin: undefined,
      control: {
        signal: async (signo) => { await this.request({ op: 'signal', id, signal: signalName(signo) }).catch(() => {}); },
        // In pieces, each frame well under the server's MAX_FRAME_BYTES once in base64; sent at
        // once and in order, so another write cannot come between them.
        putInput: async (data, eof) => {
          const chunks = chunkInput(data);
          chunks.forEach((chunk, i) => this.send({ op: 'stdin', id, data: chunk.toString('base64'), ...(eof && i === chunks.length - 1 ? { eof: true } : {}) }));
        },
      },
    };
  }

  spawn(command: string | readonly string[], options: SpawnOptions = {}): Promise<GuestProcess> {
    return this.processes.spawn(command, options);
  }

  exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.processes.exec(command, options);
  }

  /** Streams the file chunk by chunk, waiting while the server lags: memory stays small for any size. */
  async upload(hostPath: string, guestPath: string): Promise<void> {
    const st = await lstat(hostPath);
    if (!st.isFile()) throw new GvmiTestError('transfer.failed', `${hostPath}: only regular files can be uploaded to a served VM`);
    const handle = await open(hostPath, 'r');
    const id = this.id();
    // The first error for this id (e.g. not under a volume, too large) rejects; later ones are ignored.
    let refused = false;
    const outcome = new Promise<ServerMessage>((resolve, reject) => this.waiters.set(id, { resolve, reject }));
    outcome.catch(() => { refused = true; });
    try {
      const { size } = await handle.stat();
      const buffer = Buffer.allocUnsafe(UPLOAD_CHUNK);
      let offset = 0;
      // at least one chunk, so an empty file is created too; stop early once the server refused
      do {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(UPLOAD_CHUNK, size - offset), offset);
        if (this.closedError) throw this.closedError;
        await sendPaced(this.ws, JSON.stringify({ op: 'upload', id, path: guestPath, offset, data: buffer.subarray(0, bytesRead).toString('base64') } satisfies ClientMessage));
        offset += bytesRead;
        if (bytesRead === 0) break;
      } while (offset < size && !refused);
      // Its permission bits go along, as a local upload keeps them (setuid and the like never do).
      if (!refused) this.send({ op: 'upload-end', id, mode: st.mode & 0o777 });
    } catch (error) {
      this.waiters.delete(id);
      throw error instanceof GvmiTestError ? error : new GvmiTestError('transfer.failed', `upload of ${hostPath}: ${(error as Error).message}`);
    } finally {
      await handle.close();
    }
    await outcome;
  }

  /**
   * Writes each chunk at its offset as it arrives, into a temporary file renamed into place at
   * the end (a failed download leaves nothing). All-zero chunks are skipped, so a sparse file
   * stays sparse. While writes lag, the server is not read from: memory stays small.
   */
  async download(guestPath: string, hostPath: string): Promise<RemoteDownloadReport> {
    await mkdir(dirname(hostPath), { recursive: true });
    const part = join(dirname(hostPath), `.${basename(hostPath)}.gvmi-part-${randomBytes(6).toString('hex')}`);
    const handle = await open(part, 'wx', 0o600);
    let writing: Promise<void> = Promise.resolve();
    let unwritten = 0;
    let writeError: unknown;
    const onData = (d: ServerMessage): void => {
      if (d.event !== 'data') return;
      const bytes = Buffer.from(d.data, 'base64');
      if (bytes.length <= ZEROS.length && bytes.equals(ZEROS.subarray(0, bytes.length))) return;
      unwritten += bytes.length;
      if (unwritten > WRITE_HIGH_WATER_BYTES) this.ws.pause();
      writing = writing
        .then(async () => { if (writeError === undefined) await handle.write(bytes, 0, bytes.length, d.offset); })
        .catch((error: unknown) => { writeError ??= error; })
        .finally(() => {
          unwritten -= bytes.length;
          if (unwritten <= WRITE_HIGH_WATER_BYTES && this.ws.isPaused) this.ws.resume();
        });
    };
    try {
      const m = await this.request({ op: 'download', id: this.id(), path: guestPath }, onData);
      await writing;
      if (writeError !== undefined) throw new GvmiTestError('transfer.failed', `${hostPath}: ${(writeError as Error).message}`);
      if (m.event !== 'downloaded') throw new GvmiTestError('agent.protocol', `unexpected ${m.event}`);
      if (m.symlink !== undefined) {
        await handle.close();
        await unlink(part);
        await unlink(hostPath).catch(() => {});
        await symlink(m.symlink, hostPath);
        return { files: 0, symlinks: 1, skipped: [], size: 0 };
      }
      await handle.truncate(m.size); // the holes at the end, if any
      await handle.close();
      await chmod(part, m.mode);
      await rename(part, hostPath);
      return { files: 1, symlinks: 0, skipped: [], size: m.size };
    } catch (error) {
      await writing;
      await handle.close().catch(() => {});
      await unlink(part).catch(() => {});
      throw error;
    }
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
    return this.processes.diagnose(result);
  }

  shadowingFinding(): Finding | undefined {
    return shadowingFinding(this.info.shadowed);
  }

  /** Kills this connection's processes (and waits for them). Volumes are the served VM's: left alone. */
  async killProcesses(): Promise<void> {
    await this.processes.killAll();
  }

  /** @deprecated killProcesses(): this kills processes only, a StartedVm's reset() empties volumes too. */
  reset(): Promise<void> {
    return this.killProcesses();
  }

  /** Closes this connection (the server kills its processes); the served VM runs on. */
  async disconnect(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((r) => this.ws.once('close', () => r()));
    this.ws.close(1000);
    await closed;
  }

  /** Stops the served VM itself (for every client). */
  async shutdown(): Promise<void> {
    await this.request({ op: 'stop', id: this.id() }).catch(() => {});
    await this.disconnect();
  }

  /** @deprecated disconnect(): a served VM is not stopped by it (shutdown() stops it). */
  stop(): Promise<void> {
    return this.disconnect();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.disconnect();
  }
}

export function connectVm(url: string): Promise<RemoteVm> {
  return RemoteVm.connect(url);
}
