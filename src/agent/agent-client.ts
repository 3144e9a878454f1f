/**
 * Talks to the guest agent over the manager_port socket: requests with ids and timeouts,
 * notifications as events. Knows nothing about QEMU or images.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { GvmiTestError } from '../errors.js';
import { chunkInput, MessageReader, RequestWriter, type GuestMessage } from './codec.js';
import { describeErrno, errnoName } from './errno.js';
import { MsgType, PROTO_EXTENSION_VERSION, RedirectKind, STATS_FIELDS, SubHello, SubInput, SubKill, SubMount, SubResize, SubClock, SubResumed, SubRun, SubSignal, SubUsage } from './protocol.js';

export interface RunProcessSpec {
  /** The program (BIN); argv[0] when not given. */
  bin?: string;
  argv: readonly string[];
  env: readonly string[];
  cwd?: string;
  uid?: number;
  gid?: number;
  /**
   * Give the process a stdin pipe (fed with putInput). Otherwise no redirect is sent for fd 0 and
   * the process gets what a provider gives it: an empty file under /var/tmp/guest_agent_private.
   */
  stdinPipe?: boolean;
  /** A pseudo-terminal of this size as stdin/stdout/stderr (output arrives as fd 1). */
  pty?: { rows: number; cols: number };
}

export type AgentStats = Record<(typeof STATS_FIELDS)[number], number>;

export interface UpperUsageEntry {
  path: string;
  bytes: number;
}

/** A request the agent answered with ERR: the errno is in `details.errno`. */
export class AgentRequestError extends GvmiTestError {
  constructor(readonly errno: number, what: string) {
    super('agent.request-failed', `${what}: ${describeErrno(errno)}`, { details: { errno, errnoName: errnoName(errno) } });
  }
}


interface Pending {
  what: string;
  /** A RUN_PROCESS: hold that process's notifications until claimProcess(). */
  spawn?: boolean;
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
   * Notifications of processes whose RUN_PROCESS reply has been decoded but not yet seen by the
   * caller: the reply, the output and the death of a short process can arrive in one socket read,
   * and the caller's continuation only runs after that whole read is dispatched.
   */
  private readonly unclaimed = new Map<bigint, (() => void)[]>();
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
      case 'exec-failed': this.deliver(m.processId, () => this.emit('exec-failed', m.processId, { step: m.step, errno: m.errno })); return;
      case 'output-data': this.deliver(m.processId, () => this.emit('output', m.processId, m.fd, m.data)); return;
      case 'process-died': this.deliver(m.processId, () => this.emit('died', m.processId, m.status, m.kind)); return;
      case 'output-available': return; // pull mode is not used by this client
    }
    const p = this.pending.get(m.id);
    if (!p) {
      this.logger.warn({ id: m.id.toString(), type: m.type }, 'reply to no pending request');
      return;
    }
    this.pending.delete(m.id);
    if (p.timer) clearTimeout(p.timer);
    if (p.spawn && m.type === 'ok-u64') this.unclaimed.set(m.value, []);
    if (m.type === 'err') p.reject(new AgentRequestError(m.errno, p.what));
    else p.resolve(m);
  }

  private deliver(processId: bigint, emit: () => void): void {
    const held = this.unclaimed.get(processId);
    if (held) held.push(emit);
    else emit();
  }

  /** Delivers the notifications held for a process since its RUN_PROCESS reply, then live ones. */
  claimProcess(processId: bigint): void {
    const held = this.unclaimed.get(processId);
    this.unclaimed.delete(processId);
    for (const emit of held ?? []) emit();
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
    this.emit('closed', error);
  }

  async request(type: number, build: (w: RequestWriter) => void, what: string, timeoutMs = this.defaultTimeoutMs, spawn = false): Promise<GuestMessage> {
    if (this.closedError) throw this.closedError;
    const id = this.nextId++;
    const writer = new RequestWriter(id, type);
    try {
      build(writer);
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
    const frame = writer.finish();
    return new Promise<GuestMessage>((resolve, reject) => {
      const timer = timeoutMs > 0
        ? setTimeout(() => {
          this.pending.delete(id);
          reject(new GvmiTestError('agent.timeout', `${what}: no answer from the guest agent within ${timeoutMs} ms`));
        }, timeoutMs)
        : undefined;
      this.pending.set(id, { what, resolve, reject, timer, spawn });
      this.socket.write(frame);
    });
  }

  /**
   * The handshake: switches the agent's extensions on (before it, the agent is indistinguishable
   * from upstream's). Its answer is also the sign that a booted guest serves.
   */
  async hello(timeoutMs?: number): Promise<number> {
    const reply = await this.request(MsgType.HELLO, (w) => w.sub(SubHello.VERSION).u32(PROTO_EXTENSION_VERSION), 'greeting the guest agent', timeoutMs);
    if (reply.type !== 'ok-u64') throw new GvmiTestError('agent.protocol', `HELLO answered with ${reply.type}`);
    return Number(reply.value);
  }

  /** Starts a process; call claimProcess(id) once ready to receive its output and death. */
  async runProcess(spec: RunProcessSpec): Promise<bigint> {
    const reply = await this.request(MsgType.RUN_PROCESS, (w) => {
      w.sub(SubRun.BIN).bytes(spec.bin ?? spec.argv[0] ?? '');
      w.sub(SubRun.ARG).array(spec.argv);
      w.sub(SubRun.ENV).array(spec.env);
      if (spec.cwd) w.sub(SubRun.CWD).bytes(spec.cwd);
      if (spec.uid !== undefined) w.sub(SubRun.UID).u32(spec.uid);
      if (spec.gid !== undefined) w.sub(SubRun.GID).u32(spec.gid);
      if (spec.pty) {
        w.sub(SubRun.PTY).u32(spec.pty.rows).u32(spec.pty.cols);
      } else {
        if (spec.stdinPipe) w.sub(SubRun.RFD).u32(0).u8(RedirectKind.PIPE_BLOCKING).u64(65536);
        w.sub(SubRun.RFD).u32(1).u8(RedirectKind.PIPE_PUSH);
        w.sub(SubRun.RFD).u32(2).u8(RedirectKind.PIPE_PUSH);
      }
    }, `running ${spec.argv[0] ?? '?'}`, this.defaultTimeoutMs, true);
    if (reply.type !== 'ok-u64') throw new GvmiTestError('agent.protocol', `RUN_PROCESS answered with ${reply.type}`);
    return reply.value;
  }

  async kill(processId: bigint): Promise<void> {
    await this.request(MsgType.KILL_PROCESS, (w) => w.sub(SubKill.ID).u64(processId), `killing process ${processId}`);
  }

  async signal(processId: bigint, signo: number): Promise<void> {
    await this.request(MsgType.SIGNAL, (w) => w.sub(SubSignal.ID).u64(processId).sub(SubSignal.SIGNO).u32(signo), `signalling process ${processId}`);
  }

  /**
   * Stdin for a process, in PUT_INPUT requests of at most INPUT_CHUNK_BYTES (1 MiB) each (the guest
   * refuses a BYTES field over PROTO_MAX_BYTES, and stops the VM as upstream does), EOF on the
   * last. All of them are written at once, in order, so that a concurrent write of the same
   * process cannot slip between the chunks; resolves when the guest has taken every one.
   */
  async putInput(processId: bigint, data: Buffer, eof: boolean): Promise<void> {
    const chunks = chunkInput(data);
    await Promise.all(chunks.map((chunk, i) => this.request(MsgType.PUT_INPUT, (w) => {
      w.sub(SubInput.ID).u64(processId);
      if (chunk.length > 0) w.sub(SubInput.DATA).bytes(chunk);
      if (eof && i === chunks.length - 1) w.sub(SubInput.EOF);
    }, `writing stdin of process ${processId}`)));
  }

  async resize(processId: bigint, rows: number, cols: number): Promise<void> {
    await this.request(MsgType.RESIZE, (w) => w.sub(SubResize.ID).u64(processId).sub(SubResize.ROWS).u32(rows).sub(SubResize.COLS).u32(cols), `resizing the terminal of process ${processId}`);
  }

  /**
   * Tells the agent of a VM restored from a snapshot to take the host's time and fresh entropy
   * (proto.h MSG_RESUMED). Its answer is also the sign that the restored guest is running.
   */
  async resumed(realtimeNs: bigint, entropy: Buffer, timeoutMs?: number): Promise<void> {
    await this.request(MsgType.RESUMED, (w) => w.sub(SubResumed.TIME_NS).u64(realtimeNs).sub(SubResumed.ENTROPY).bytes(entropy), 'refreshing the restored guest', timeoutMs);
  }

  /**
   * Moves the guest's CLOCK_REALTIME by `stepNs` (may be negative; 0 only reads it) and answers
   * the guest's CLOCK_REALTIME in ns, read after the step (proto.h MSG_CLOCK).
   */
  async clock(stepNs: bigint, timeoutMs?: number): Promise<bigint> {
    const reply = await this.request(MsgType.CLOCK, (w) => { if (stepNs !== 0n) w.sub(SubClock.STEP_NS).u64(BigInt.asUintN(64, stepNs)); }, 'setting the guest clock', timeoutMs);
    if (reply.type !== 'ok-u64') throw new GvmiTestError('agent.protocol', `CLOCK answered with ${reply.type}`);
    return reply.value;
  }

  async mountVolume(tag: string, path: string): Promise<void> {
    await this.request(MsgType.MOUNT_VOLUME, (w) => w.sub(SubMount.TAG).bytes(tag).sub(SubMount.PATH).bytes(path), `mounting volume ${path}`);
  }

  async stats(): Promise<AgentStats> {
    const reply = await this.request(MsgType.STATS, () => {}, 'reading guest stats');
    if (reply.type !== 'ok-bytes' || reply.data.length < STATS_FIELDS.length * 8) {
      throw new GvmiTestError('agent.protocol', 'STATS answered with a short body');
    }
    const stats = {} as AgentStats;
    STATS_FIELDS.forEach((name, i) => { stats[name] = Number(reply.data.readBigUInt64LE(i * 8)); });
    return stats;
  }

  async upperUsage(limit: number): Promise<UpperUsageEntry[]> {
    const reply = await this.request(MsgType.UPPER_USAGE, (w) => w.sub(SubUsage.LIMIT).u32(limit), 'reading overlay usage');
    if (reply.type !== 'ok-bytes') throw new GvmiTestError('agent.protocol', 'UPPER_USAGE answered without bytes');
    const entries: UpperUsageEntry[] = [];
    let offset = 0;
    const data = reply.data;
    while (offset + 16 <= data.length) {
      const bytes = Number(data.readBigUInt64LE(offset));
      const length = Number(data.readBigUInt64LE(offset + 8));
      entries.push({ bytes, path: data.subarray(offset + 16, offset + 16 + length).toString('utf8') });
      offset += 16 + length;
    }
    return entries;
  }

  async syncFs(): Promise<void> {
    await this.request(MsgType.SYNC_FS, () => {}, 'syncing file systems');
  }

  /** Asks the guest to power off; resolves when it acknowledged. */
  async quit(timeoutMs = 5000): Promise<void> {
    await this.request(MsgType.QUIT, () => {}, 'shutting down', timeoutMs);
  }
}
