/**
 * Encoding host requests and decoding guest messages (runtime/include/proto.h). Pure: no I/O.
 */
import { GvmiTestError } from '../errors.js';
import { INPUT_CHUNK_BYTES, PROTO_MAX_ARRAY, PROTO_MAX_BYTES, RespType } from './protocol.js';

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

/** Largest body we accept in one message: a guest must not make the host allocate at will. */
const MAX_BODY = 64 * 1024 * 1024;

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
  if (!Number.isSafeInteger(length) || length > MAX_BODY) {
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
