/**
 * The guest → host half of Golem's ya-runtime-vm protocol, read exactly as the Rust host reads it
 * (ya-runtime-vm v0.5.2 `runtime/src/response_parser.rs`; v0.4.2 is the same), written from the
 * Rust source and NOT from gvmi-test's own codec (src/agent), so that the two cannot share a bug.
 *
 * Strict on purpose: anything `parse_one_response` would fail on is a WireViolation carrying the
 * absolute byte offset in the stream. As in Rust, the first violation ends parsing (the host's
 * reader task returns its error, vmrt.rs:235-252); every byte from there on is unparseable.
 * Every byte received is recorded, so a test can say "N bytes came, all N parsed".
 */

export type ExitType = 'exited' | 'killed' | 'dumped';

/** response_parser.rs:6-11 */
export type Response =
  | { type: 'ok' }
  | { type: 'okU64'; value: bigint }
  | { type: 'okBytes'; bytes: Buffer }
  | { type: 'err'; code: number };

/** response_parser.rs:42-46 */
export type Notification =
  | { type: 'outputAvailable'; id: bigint; fd: number }
  | { type: 'processDied'; id: bigint; status: number; exitType: ExitType };

/** One message as parsed, with where it started in the stream and how long it was. */
export type GuestMessage =
  | { kind: 'response'; offset: number; length: number; id: bigint; resp: Response }
  | { kind: 'notification'; offset: number; length: number; notification: Notification };

export class WireViolation extends Error {
  constructor(
    /** Absolute offset in the received stream of the first byte the Rust host would not accept. */
    readonly offset: number,
    readonly reason: string,
    /** Where in the Rust sources this rule comes from. */
    readonly rule: string,
  ) {
    super(`byte ${offset}: ${reason} (${rule})`);
    this.name = 'WireViolation';
  }
}

/** response_parser.rs:20-33: only 0, 1, 2 are exit types. */
const EXIT_TYPES: readonly ExitType[] = ['exited', 'killed', 'dumped'];

/**
 * A BYTES length the host could never hold. Rust would try `vec![0; len]` and abort the reader
 * (capacity overflow or out of memory); here anything Node cannot put in one Buffer is refused.
 */
const MAX_BYTES_LENGTH = 2 ** 31 - 1;

/** Thrown inside parseOne when the buffered bytes end before the message does. */
const NEED_MORE = Symbol('need more bytes');

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer, private readonly base: number) {}
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw NEED_MORE;
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  /** response_parser.rs:78-83: u64 length, then exactly that many bytes. */
  bytes(): Buffer {
    const at = this.base + this.pos;
    const len = this.u64();
    if (len > BigInt(MAX_BYTES_LENGTH)) {
      throw new WireViolation(at, `BYTES length ${len} cannot be allocated`, 'response_parser.rs:78-83 recv_bytes');
    }
    this.need(Number(len));
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + Number(len)));
    this.pos += Number(len);
    return out;
  }
  get offset(): number {
    return this.base + this.pos;
  }
}

/**
 * Parses one message from the front of `buf` (whose first byte is at stream offset `base`), or
 * returns undefined when `buf` holds only part of one. Throws WireViolation for what Rust rejects.
 */
function parseOne(buf: Buffer, base: number): GuestMessage | undefined {
  const r = new Reader(buf, base);
  try {
    const id = r.u64();
    const typeAt = r.offset;
    const typ = r.u8();
    const response = (resp: Response): GuestMessage => ({ kind: 'response', offset: base, length: r.pos, id, resp });
    const notification = (n: Notification): GuestMessage => ({ kind: 'notification', offset: base, length: r.pos, notification: n });
    switch (typ) {
      case 0: // response_parser.rs:92-95
        return response({ type: 'ok' });
      case 1: // response_parser.rs:96-102
        return response({ type: 'okU64', value: r.u64() });
      case 2: // response_parser.rs:103-109
        return response({ type: 'okBytes', bytes: r.bytes() });
      case 3: // response_parser.rs:110-116
        return response({ type: 'err', code: r.u32() });
      case 4: { // response_parser.rs:117-130: a notification must carry id 0
        if (id !== 0n) throw new WireViolation(base, `OUTPUT_AVAILABLE with message id ${id} (must be 0)`, 'response_parser.rs:117-129 "Invalid response message ID"');
        const pid = r.u64();
        const fd = r.u32();
        return notification({ type: 'outputAvailable', id: pid, fd });
      }
      case 5: { // response_parser.rs:131-146
        if (id !== 0n) throw new WireViolation(base, `PROCESS_DIED with message id ${id} (must be 0)`, 'response_parser.rs:131-145 "Invalid response message ID"');
        const pid = r.u64();
        const status = r.u8();
        const kindAt = r.offset;
        const kind = r.u8();
        const exitType = EXIT_TYPES[kind];
        if (exitType === undefined) throw new WireViolation(kindAt, `PROCESS_DIED exit type ${kind} (only 0, 1, 2 exist)`, 'response_parser.rs:20-33 "Invalid exit type"');
        return notification({ type: 'processDied', id: pid, status, exitType });
      }
      default: // response_parser.rs:147-150
        throw new WireViolation(typeAt, `message type ${typ} (the host knows 0-5 only)`, 'response_parser.rs:147-150 "Invalid response type"');
    }
  } catch (error) {
    if (error === NEED_MORE) return undefined;
    throw error;
  }
}

/**
 * Incremental, strict parser for one connection. Feed it every chunk read from the socket and
 * call end() when the connection closes: bytes left over then (a message cut short, a length
 * promising more than came) are unparseable, as `read_exact` would fail on them in Rust.
 */
export class StrictResponseParser {
  private readonly chunks: Buffer[] = [];
  private pending: Buffer = Buffer.alloc(0);
  private parsed = 0;
  private total = 0;
  private ended = false;
  /** The first violation; nothing is parsed after it (the Rust reader task has returned). */
  violation: WireViolation | undefined;

  /** Returns the messages completed by `chunk`. */
  push(chunk: Buffer): GuestMessage[] {
    this.chunks.push(Buffer.from(chunk));
    this.total += chunk.length;
    if (this.violation || this.ended) return [];
    this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    const out: GuestMessage[] = [];
    try {
      for (;;) {
        const msg = parseOne(this.pending, this.parsed);
        if (!msg) break;
        out.push(msg);
        this.parsed += msg.length;
        this.pending = this.pending.subarray(msg.length);
      }
    } catch (error) {
      if (!(error instanceof WireViolation)) throw error;
      this.violation = error;
    }
    return out;
  }

  /** The connection closed: a partial message left over is a violation at its first byte. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.violation && this.pending.length > 0) {
      this.violation = new WireViolation(this.parsed, `the stream ended ${this.pending.length} bytes into a message (${this.pending.subarray(0, 32).toString('hex')})`, 'response_parser.rs:60-83 read_exact: UnexpectedEof');
    }
  }

  /** Every byte received on this connection, in order. */
  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }
  get receivedBytes(): number {
    return this.total;
  }
  /** Bytes that formed complete, accepted messages. */
  get parsedBytes(): number {
    return this.parsed;
  }
  /** Received bytes that are not part of an accepted message (0 is the goal). Only final after end(). */
  get unparseableBytes(): number {
    return this.total - this.parsed;
  }

  /** A hex dump around `offset`, for error messages. */
  around(offset: number, radius = 24): string {
    const all = this.received;
    const from = Math.max(0, offset - radius);
    return `[${from}..${Math.min(all.length, offset + radius)}) ${all.subarray(from, offset).toString('hex')} | ${all.subarray(offset, offset + radius).toString('hex')}`;
  }
}
