/**
 * Every byte of the agent protocol (runtime/include/proto.h) on the host side: the request frame
 * and each request's body, the guest's message stream and each reply's body. Pure: no I/O;
 * AgentClient only sends what this builds and hands on what this decodes.
 */
import { GvmiTestError } from '../errors.js';
import {
  MsgType, PROTO_EXTENSION_VERSION, PROTO_MAX_ARRAY, PROTO_MAX_BYTES, PROTO_MAX_ENTROPY, PROTO_MAX_MESSAGE, PROTO_UPPER_USAGE_MAX_FILES, RedirectKind, RespType, STATS_FIELDS,
  SubClock, SubHello, SubInput, SubKill, SubMount, SubResize, SubResumed, SubRun, SubSignal, SubUsage,
} from './protocol.js';

/**
 * Stdin is sent in PUT_INPUT requests of at most this many bytes: well under PROTO_MAX_BYTES, so
 * that neither side holds one huge frame, and few enough round trips for any size.
 */
export const INPUT_CHUNK_BYTES = 1024 * 1024;

/**
 * The stdin pipe's buffer a process gets with `stdinPipe` (REDIRECT_PIPE_BLOCKING's size: a
 * multiple of 4096, as proto.h requires).
 */
const STDIN_PIPE_BYTES = 65536;

/** Builds one request: u64 id | u8 type | sub-messages | 0. */
export class RequestWriter {
  private readonly parts: Buffer[] = [];

  constructor(id: bigint, type: number) {
    const head = Buffer.alloc(9);
    head.writeBigUInt64LE(id, 0);
    head.writeUInt8(type, 8);
    this.parts.push(head);
  }

  sub(subtype: number): this {
    this.parts.push(Buffer.of(subtype));
    return this;
  }

  u8(value: number): this {
    this.parts.push(Buffer.of(value));
    return this;
  }

  u32(value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value, 0);
    this.parts.push(b);
    return this;
  }

  u64(value: bigint | number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(value), 0);
    this.parts.push(b);
    return this;
  }

  /**
   * A BYTES field. One over PROTO_MAX_BYTES is refused here: the guest could not take it and
   * would stop the VM (as upstream's init dies on a field it cannot allocate). Data that may be
   * that large is sent in pieces (chunkInput).
   */
  bytes(data: Buffer | string): this {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (buf.length > PROTO_MAX_BYTES) {
      throw new GvmiTestError('usage', `a field of ${buf.length} bytes: the agent channel carries at most ${PROTO_MAX_BYTES} bytes (16 MiB) in one field`);
    }
    this.u64(buf.length);
    this.parts.push(buf);
    return this;
  }

  array(items: readonly (Buffer | string)[]): this {
    if (items.length > PROTO_MAX_ARRAY) {
      throw new GvmiTestError('usage', `${items.length} entries in one list: the agent channel carries at most ${PROTO_MAX_ARRAY}`);
    }
    this.u64(items.length);
    for (const item of items) this.bytes(item);
    return this;
  }

  finish(): Buffer {
    this.parts.push(Buffer.of(0));
    return Buffer.concat(this.parts);
  }
}

/** A request without its id: its type and how its body is written. */
export interface AgentRequest {
  readonly type: number;
  readonly write: (w: RequestWriter) => void;
}

/** The bytes of `request` under message id `id`. */
export function encodeRequest(id: bigint, request: AgentRequest): Buffer {
  const writer = new RequestWriter(id, request.type);
  request.write(writer);
  const frame = writer.finish();
  // The agent cannot hold a larger request and would stop the VM, as upstream's does.
  if (frame.length > PROTO_MAX_MESSAGE) {
    throw new GvmiTestError('usage', `a request of ${frame.length} bytes: the agent channel carries at most ${PROTO_MAX_MESSAGE} bytes (64 MiB) in one message`);
  }
  return frame;
}

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

/** HELLO: the host speaks the extensions of this version. */
export function helloRequest(version = PROTO_EXTENSION_VERSION): AgentRequest {
  return { type: MsgType.HELLO, write: (w) => w.sub(SubHello.VERSION).u32(version) };
}

/** RUN_PROCESS with stdout and stderr pushed as they are written (or one pseudo-terminal). */
export function runProcessRequest(spec: RunProcessSpec): AgentRequest {
  return {
    type: MsgType.RUN_PROCESS,
    write: (w) => {
      w.sub(SubRun.BIN).bytes(spec.bin ?? spec.argv[0] ?? '');
      w.sub(SubRun.ARG).array(spec.argv);
      w.sub(SubRun.ENV).array(spec.env);
      if (spec.cwd) w.sub(SubRun.CWD).bytes(spec.cwd);
      if (spec.uid !== undefined) w.sub(SubRun.UID).u32(spec.uid);
      if (spec.gid !== undefined) w.sub(SubRun.GID).u32(spec.gid);
      if (spec.pty) {
        w.sub(SubRun.PTY).u32(spec.pty.rows).u32(spec.pty.cols);
      } else {
        if (spec.stdinPipe) w.sub(SubRun.RFD).u32(0).u8(RedirectKind.PIPE_BLOCKING).u64(STDIN_PIPE_BYTES);
        w.sub(SubRun.RFD).u32(1).u8(RedirectKind.PIPE_PUSH);
        w.sub(SubRun.RFD).u32(2).u8(RedirectKind.PIPE_PUSH);
      }
    },
  };
}

export function killRequest(processId: bigint): AgentRequest {
  return { type: MsgType.KILL_PROCESS, write: (w) => w.sub(SubKill.ID).u64(processId) };
}

export function signalRequest(processId: bigint, signo: number): AgentRequest {
  return { type: MsgType.SIGNAL, write: (w) => w.sub(SubSignal.ID).u64(processId).sub(SubSignal.SIGNO).u32(signo) };
}

/**
 * Stdin for a process as PUT_INPUT requests of at most INPUT_CHUNK_BYTES each (the guest refuses
 * a BYTES field over PROTO_MAX_BYTES, and stops the VM as upstream does), EOF on the last. An
 * empty `data` is one request (an EOF alone, or nothing at all).
 */
export function putInputRequests(processId: bigint, data: Buffer, eof: boolean): AgentRequest[] {
  const chunks = chunkInput(data);
  return chunks.map((chunk, i) => ({
    type: MsgType.PUT_INPUT,
    write: (w) => {
      w.sub(SubInput.ID).u64(processId);
      if (chunk.length > 0) w.sub(SubInput.DATA).bytes(chunk);
      if (eof && i === chunks.length - 1) w.sub(SubInput.EOF);
    },
  }));
}

export function resizeRequest(processId: bigint, rows: number, cols: number): AgentRequest {
  return { type: MsgType.RESIZE, write: (w) => w.sub(SubResize.ID).u64(processId).sub(SubResize.ROWS).u32(rows).sub(SubResize.COLS).u32(cols) };
}

/** RESUMED: the host's CLOCK_REALTIME and fresh entropy (at most PROTO_MAX_ENTROPY bytes) for a restored guest. */
export function resumedRequest(realtimeNs: bigint, entropy: Buffer): AgentRequest {
  if (entropy.length > PROTO_MAX_ENTROPY) {
    throw new GvmiTestError('usage', `${entropy.length} bytes of entropy: the agent takes at most ${PROTO_MAX_ENTROPY}`);
  }
  return { type: MsgType.RESUMED, write: (w) => w.sub(SubResumed.TIME_NS).u64(realtimeNs).sub(SubResumed.ENTROPY).bytes(entropy) };
}

/** CLOCK: step CLOCK_REALTIME by `stepNs` (signed; 0 sends no step and only reads the clock). */
export function clockRequest(stepNs: bigint): AgentRequest {
  return { type: MsgType.CLOCK, write: (w) => { if (stepNs !== 0n) w.sub(SubClock.STEP_NS).u64(BigInt.asUintN(64, stepNs)); } };
}

export function mountVolumeRequest(tag: string, path: string): AgentRequest {
  return { type: MsgType.MOUNT_VOLUME, write: (w) => w.sub(SubMount.TAG).bytes(tag).sub(SubMount.PATH).bytes(path) };
}

export function upperUsageRequest(limit: number): AgentRequest {
  if (!Number.isInteger(limit) || limit < 1 || limit > PROTO_UPPER_USAGE_MAX_FILES) {
    throw new GvmiTestError('usage', `${limit} files: the agent lists 1 to ${PROTO_UPPER_USAGE_MAX_FILES} of the largest`);
  }
  return { type: MsgType.UPPER_USAGE, write: (w) => w.sub(SubUsage.LIMIT).u32(limit) };
}

/** A request whose body is empty: QUIT, STATS, SYNC_FS. */
export function emptyRequest(type: MsgType): AgentRequest {
  return { type, write: () => {} };
}

export type AgentStats = Record<(typeof STATS_FIELDS)[number], number>;

/** STATS's reply body: proto.h struct proto_stats. */
export function decodeStats(data: Buffer): AgentStats {
  if (data.length < STATS_FIELDS.length * 8) {
    throw new GvmiTestError('agent.protocol', `STATS answered with ${data.length} bytes, not ${STATS_FIELDS.length * 8}`);
  }
  const stats = {} as AgentStats;
  STATS_FIELDS.forEach((name, i) => { stats[name] = Number(data.readBigUInt64LE(i * 8)); });
  return stats;
}

/** A ram or storage volume of the deploy, as the guest measured it (runtime/init/deploy_volumes.h). */
export interface StatsVolume {
  guestPath: string;
  kind: 'ram' | 'storage';
  totalBytes: number;
  usedBytes: number;
  /** Mounted read-only now (a storage volume's errors=remount-ro after an error). */
  readOnly: boolean;
}

/**
 * What follows struct proto_stats in STATS's reply: per ram or storage volume of the deploy, u64
 * kind (1 ram, 2 storage) | u64 total | u64 used | u64 flags (bit 0 read-only) | u64 path length |
 * path. An older agent sends none; an entry of an unknown kind is skipped.
 */
export function decodeStatsVolumes(data: Buffer): StatsVolume[] {
  const volumes: StatsVolume[] = [];
  let offset = STATS_FIELDS.length * 8;
  while (offset + 40 <= data.length) {
    const kind = Number(data.readBigUInt64LE(offset));
    const length = Number(data.readBigUInt64LE(offset + 32));
    if (offset + 40 + length > data.length) {
      throw new GvmiTestError('agent.protocol', `STATS announced a ${length}-byte volume path past the end of its reply`);
    }
    if (kind === 1 || kind === 2) {
      volumes.push({
        guestPath: data.subarray(offset + 40, offset + 40 + length).toString('utf8'),
        kind: kind === 1 ? 'ram' : 'storage',
        totalBytes: Number(data.readBigUInt64LE(offset + 8)),
        usedBytes: Number(data.readBigUInt64LE(offset + 16)),
        readOnly: (data.readBigUInt64LE(offset + 24) & 1n) === 1n,
      });
    }
    offset += 40 + length;
  }
  return volumes;
}

export interface UpperUsageEntry {
  path: string;
  bytes: number;
}

/** UPPER_USAGE's reply body: repeated (u64 size | u64 path_len | path). */
export function decodeUpperUsage(data: Buffer): UpperUsageEntry[] {
  const entries: UpperUsageEntry[] = [];
  let offset = 0;
  while (offset + 16 <= data.length) {
    const bytes = Number(data.readBigUInt64LE(offset));
    const length = Number(data.readBigUInt64LE(offset + 8));
    if (offset + 16 + length > data.length) {
      throw new GvmiTestError('agent.protocol', `UPPER_USAGE announced a ${length}-byte path past the end of its reply`);
    }
    entries.push({ bytes, path: data.subarray(offset + 16, offset + 16 + length).toString('utf8') });
    offset += 16 + length;
  }
  if (offset !== data.length) throw new GvmiTestError('agent.protocol', 'UPPER_USAGE ended in the middle of an entry');
  return entries;
}

/** The number an OK_U64 reply carries; anything else answering `what` is a protocol error. */
export function u64Reply(reply: GuestMessage, what: string): bigint {
  if (reply.type !== 'ok-u64') throw new GvmiTestError('agent.protocol', `${what} answered with ${reply.type}`);
  return reply.value;
}

/** The body an OK_BYTES reply carries; anything else answering `what` is a protocol error. */
export function bytesReply(reply: GuestMessage, what: string): Buffer {
  if (reply.type !== 'ok-bytes') throw new GvmiTestError('agent.protocol', `${what} answered with ${reply.type}`);
  return reply.data;
}

/**
 * `data` cut into pieces of at most `size` bytes (views, no copy); an empty buffer is one empty
 * piece, so that an EOF alone is still one request.
 */
export function chunkInput(data: Buffer, size = INPUT_CHUNK_BYTES): Buffer[] {
  if (data.length <= size) return [data];
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += size) chunks.push(data.subarray(offset, offset + size));
  return chunks;
}

export type GuestMessage =
  | { type: 'ok'; id: bigint }
  | { type: 'ok-u64'; id: bigint; value: bigint }
  | { type: 'ok-bytes'; id: bigint; data: Buffer }
  | { type: 'err'; id: bigint; errno: number }
  | { type: 'output-available'; processId: bigint; fd: number }
  | { type: 'process-died'; processId: bigint; status: number; kind: number }
  | { type: 'exec-failed'; processId: bigint; step: number; errno: number }
  | { type: 'output-data'; processId: bigint; fd: number; data: Buffer };


/** Body length of a message once `available` bytes of it are known, or undefined if not yet. */
function bodyLength(type: number, body: Buffer): number | undefined {
  switch (type) {
    case RespType.OK: return 0;
    case RespType.OK_U64: return 8;
    case RespType.ERR: return 4;
    case RespType.NOTIFY_OUTPUT_AVAILABLE: return 12;
    case RespType.NOTIFY_PROCESS_DIED: return 10;
    case RespType.NOTIFY_EXEC_FAILED: return 13;
    case RespType.OK_BYTES:
      return body.length < 8 ? undefined : checked(8 + Number(body.readBigUInt64LE(0)));
    case RespType.NOTIFY_OUTPUT_DATA:
      return body.length < 20 ? undefined : checked(20 + Number(body.readBigUInt64LE(12)));
    default:
      throw new GvmiTestError('agent.protocol', `the guest sent unknown message type ${type}`);
  }
}

function checked(length: number): number {
  if (!Number.isSafeInteger(length) || length > PROTO_MAX_MESSAGE) {
    throw new GvmiTestError('agent.protocol', `the guest announced a ${length}-byte message`);
  }
  return length;
}

function decode(id: bigint, type: number, body: Buffer): GuestMessage {
  switch (type) {
    case RespType.OK: return { type: 'ok', id };
    case RespType.OK_U64: return { type: 'ok-u64', id, value: body.readBigUInt64LE(0) };
    case RespType.OK_BYTES: return { type: 'ok-bytes', id, data: body.subarray(8) };
    case RespType.ERR: return { type: 'err', id, errno: body.readUInt32LE(0) };
    case RespType.NOTIFY_OUTPUT_AVAILABLE:
      return { type: 'output-available', processId: body.readBigUInt64LE(0), fd: body.readUInt32LE(8) };
    case RespType.NOTIFY_PROCESS_DIED:
      return { type: 'process-died', processId: body.readBigUInt64LE(0), status: body.readUInt8(8), kind: body.readUInt8(9) };
    case RespType.NOTIFY_EXEC_FAILED:
      return { type: 'exec-failed', processId: body.readBigUInt64LE(0), step: body.readUInt8(8), errno: body.readUInt32LE(9) };
    default:
      return { type: 'output-data', processId: body.readBigUInt64LE(0), fd: body.readUInt32LE(8), data: body.subarray(20) };
  }
}

/**
 * Turns a byte stream, split or joined anywhere, into guest messages. A malformed stream throws
 * GvmiTestError('agent.protocol'): there is no way to find the next message boundary after it.
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): GuestMessage[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const messages: GuestMessage[] = [];
    for (;;) {
      if (this.buffered < 9) break;
      const head = this.peek(9 + 20);
      const id = head.readBigUInt64LE(0);
      const type = head.readUInt8(8);
      const length = bodyLength(type, head.subarray(9));
      if (length === undefined || this.buffered < 9 + length) break;
      const whole = this.take(9 + length);
      messages.push(decode(id, type, whole.subarray(9)));
    }
    return messages;
  }

  /** Up to n bytes from the front, without consuming. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n || this.chunks.length === 1) return first.subarray(0, n);
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0]!;
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
