/**
 * Talks to the guest agent over the manager_port socket: requests with ids and timeouts,
 * notifications as events. Knows nothing about QEMU or images.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { GvmiTestError } from '../errors.js';
import {
  bytesReply, clockRequest, decodeStats, decodeStatsVolumes, type StatsVolume, decodeUpperUsage, emptyRequest, encodeRequest, helloRequest, killRequest, MessageReader,
  mountVolumeRequest, putInputRequests, resizeRequest, resumedRequest, runProcessRequest, signalRequest, u64Reply, upperUsageRequest,
  type AgentRequest, type AgentStats, type GuestMessage, type RequestWriter, type RunProcessSpec, type UpperUsageEntry,
} from './codec.js';
import { describeErrno, errnoName } from './errno.js';
import { MsgType } from './protocol.js';

export type { AgentStats, RunProcessSpec, UpperUsageEntry } from './codec.js';

/** A request the agent answered with ERR: the errno is in `details.errno`. */
export class AgentRequestError extends GvmiTestError {
  constructor(readonly errno: number, what: string) {
    super('agent.request-failed', `${what}: ${describeErrno(errno)}`, { details: { errno, errnoName: errnoName(errno) } });
  }
}


interface Pending {
  what: string;
  /** A RUN_PROCESS: called with the new process's id as its answer is decoded. */
  onStarted?: (processId: bigint) => void;
  resolve: (m: GuestMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Why a process that RUN_PROCESS answered OK could not start (NOTIFY_EXEC_FAILED). */
export interface ExecFailure {
  /** proto.h enum exec_step */
  step: number;
  errno: number;
}

/** One process's notifications, in the order the guest sent them. */
export interface ProcessListener {
  output(fd: number, data: Buffer): void;
  execFailed(failure: ExecFailure): void;
  died(status: number, kind: number): void;
  /** The channel closed while the process ran. */
  lost(error: GvmiTestError): void;
}

/** Notifications of processes started without a listener (raw requests) come as events. */
export interface AgentEvents {
  output: [processId: bigint, fd: number, data: Buffer];
  'exec-failed': [processId: bigint, failure: ExecFailure];
  died: [processId: bigint, status: number, kind: number];
  closed: [error: GvmiTestError];
}

export class AgentClient extends EventEmitter<AgentEvents> {
  private readonly reader = new MessageReader();
  private readonly pending = new Map<bigint, Pending>();
  private nextId = 1n;
  /**
   * Each process's listener, set as its RUN_PROCESS answer is decoded: the answer, the output and
   * the death of a short process can come in one read, and whatever follows the answer is the
   * listener's, in order, with nothing held.
   */
  private readonly processListeners = new Map<bigint, ProcessListener>();
  private closedError: GvmiTestError | undefined;

  /**
   * @param explainDisconnect says why the channel closed (stopped, crashed, with the console):
   *   pending calls are rejected with its answer.
   */
  constructor(
    private readonly socket: Socket,
    private readonly logger: Logger,
    private readonly explainDisconnect: () => Promise<GvmiTestError> = async () => new GvmiTestError('vm.stopped', 'the agent channel closed'),
    private readonly defaultTimeoutMs = 30_000,
  ) {
    super();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => logger.debug({ error }, 'agent channel error'));
    socket.on('close', () => {
      if (this.closedError) return;
      void this.explainDisconnect().then((e) => this.close(e), () => this.close(new GvmiTestError('vm.stopped', 'the agent channel closed')));
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Stops reading from the guest (back-pressure reaches the guest's processes). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  private onData(chunk: Buffer): void {
    let messages: GuestMessage[];
    try {
      messages = this.reader.push(chunk);
    } catch (error) {
      this.close(error as GvmiTestError);
      this.socket.destroy();
      return;
    }
    for (const m of messages) this.dispatch(m);
  }

  private dispatch(m: GuestMessage): void {
    switch (m.type) {
      case 'exec-failed': {
        const failure = { step: m.step, errno: m.errno };
        const listener = this.processListeners.get(m.processId);
        if (listener) listener.execFailed(failure);
        else this.emit('exec-failed', m.processId, failure);
        return;
      }
      case 'output-data': {
        const listener = this.processListeners.get(m.processId);
        if (listener) listener.output(m.fd, m.data);
        else this.emit('output', m.processId, m.fd, m.data);
        return;
      }
      case 'process-died': {
        const listener = this.processListeners.get(m.processId);
        this.processListeners.delete(m.processId);
        if (listener) listener.died(m.status, m.kind);
        else this.emit('died', m.processId, m.status, m.kind);
        return;
      }
      case 'output-available': return; // pull mode is not used by this client
    }
    const p = this.pending.get(m.id);
    if (!p) {
      this.logger.warn({ id: m.id.toString(), type: m.type }, 'reply to no pending request');
      return;
    }
    this.pending.delete(m.id);
    if (p.timer) clearTimeout(p.timer);
    if (p.onStarted && m.type === 'ok-u64') p.onStarted(m.value);
    if (m.type === 'err') p.reject(new AgentRequestError(m.errno, p.what));
    else p.resolve(m);
  }

  /** Rejects everything pending with `error`; later calls fail with it too. */
  close(error: GvmiTestError): void {
    if (this.closedError) return;
    this.closedError = error;
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
    const orphaned = [...this.processListeners.values()];
    this.processListeners.clear();
    for (const listener of orphaned) listener.lost(error);
    this.emit('closed', error);
  }

  /** A raw request: its type and body as given (the methods below build theirs in codec.ts). */
  async request(type: number, build: (w: RequestWriter) => void, what: string, timeoutMs = this.defaultTimeoutMs): Promise<GuestMessage> {
    return this.send({ type, write: build }, what, timeoutMs);
  }

  private async send(request: AgentRequest, what: string, timeoutMs = this.defaultTimeoutMs, onStarted?: (processId: bigint) => void): Promise<GuestMessage> {
    if (this.closedError) throw this.closedError;
    const { type } = request;
    const id = this.nextId++;
    let frame: Buffer;
    try {
      frame = encodeRequest(id, request);
    } catch (error) {
      // A field over the protocol's limits (codec.ts): nothing was sent.
      if (error instanceof GvmiTestError) {
        throw new GvmiTestError(error.code, `${what}: ${error.message}`, {
          ...(type === MsgType.RUN_PROCESS ? { hint: 'Linux takes at most 128 KiB per argument or variable (and about 2 MiB in all) through execve: pass large data as stdin or a file in a volume' } : {}),
          cause: error,
        });
      }
      throw error;
    }
    return new Promise<GuestMessage>((resolve, reject) => {
      const timer = timeoutMs > 0
        ? setTimeout(() => {
          this.pending.delete(id);
          reject(new GvmiTestError('agent.timeout', `${what}: no answer from the guest agent within ${timeoutMs} ms`));
        }, timeoutMs)
        : undefined;
      this.pending.set(id, { what, resolve, reject, timer, ...(onStarted ? { onStarted } : {}) });
      this.socket.write(frame);
    });
  }

  /**
   * The handshake: switches the agent's extensions on (before it, the agent is indistinguishable
   * from upstream's). Its answer is also the sign that a booted guest serves.
   */
  async hello(timeoutMs?: number): Promise<number> {
    return Number(u64Reply(await this.send(helloRequest(), 'greeting the guest agent', timeoutMs), 'HELLO'));
  }

  /** Starts a process; `listener` gets its notifications from the first one on. */
  async runProcess(spec: RunProcessSpec, listener: ProcessListener): Promise<bigint> {
    const reply = await this.send(runProcessRequest(spec), `running ${spec.argv[0] ?? '?'}`, this.defaultTimeoutMs, (id) => this.processListeners.set(id, listener));
    return u64Reply(reply, 'RUN_PROCESS');
  }

  async kill(processId: bigint): Promise<void> {
    await this.send(killRequest(processId), `killing process ${processId}`);
  }

  async signal(processId: bigint, signo: number): Promise<void> {
    await this.send(signalRequest(processId, signo), `signalling process ${processId}`);
  }

  /**
   * Stdin for a process, in PUT_INPUT requests of at most INPUT_CHUNK_BYTES (1 MiB) each (the guest
   * refuses a BYTES field over PROTO_MAX_BYTES, and stops the VM as upstream does), EOF on the
   * last. All of them are written at once, in order, so that a concurrent write of the same
   * process cannot slip between the chunks; resolves when the guest has taken every one.
   */
  async putInput(processId: bigint, data: Buffer, eof: boolean): Promise<void> {
    await Promise.all(putInputRequests(processId, data, eof).map((request) => this.send(request, `writing stdin of process ${processId}`)));
  }

  async resize(processId: bigint, rows: number, cols: number): Promise<void> {
    await this.send(resizeRequest(processId, rows, cols), `resizing the terminal of process ${processId}`);
  }

  /**
   * Tells the agent of a VM restored from a snapshot to take the host's time and fresh entropy
   * (proto.h MSG_RESUMED). Its answer is also the sign that the restored guest is running.
   */
  async resumed(realtimeNs: bigint, entropy: Buffer, timeoutMs?: number): Promise<void> {
    await this.send(resumedRequest(realtimeNs, entropy), 'refreshing the restored guest', timeoutMs);
  }

  /**
   * Moves the guest's CLOCK_REALTIME by `stepNs` (may be negative; 0 only reads it) and answers
   * the guest's CLOCK_REALTIME in ns, read after the step (proto.h MSG_CLOCK).
   */
  async clock(stepNs: bigint, timeoutMs?: number): Promise<bigint> {
    return u64Reply(await this.send(clockRequest(stepNs), 'setting the guest clock', timeoutMs), 'CLOCK');
  }

  async mountVolume(tag: string, path: string): Promise<void> {
    await this.send(mountVolumeRequest(tag, path), `mounting volume ${path}`);
  }

  /** The fixed fields, and each ram and storage volume of the deploy after them (an older agent sends none). */
  async stats(): Promise<AgentStats & { deployVolumes: StatsVolume[] }> {
    const body = bytesReply(await this.send(emptyRequest(MsgType.STATS), 'reading guest stats'), 'STATS');
    return { ...decodeStats(body), deployVolumes: decodeStatsVolumes(body) };
  }

  async upperUsage(limit: number): Promise<UpperUsageEntry[]> {
    return decodeUpperUsage(bytesReply(await this.send(upperUsageRequest(limit), 'reading overlay usage'), 'UPPER_USAGE'));
  }

  async syncFs(): Promise<void> {
    await this.send(emptyRequest(MsgType.SYNC_FS), 'syncing file systems');
  }

  /** Asks the guest to power off; resolves when it acknowledged. */
  async quit(timeoutMs = 5000): Promise<void> {
    await this.send(emptyRequest(MsgType.QUIT), 'shutting down', timeoutMs);
  }
}
