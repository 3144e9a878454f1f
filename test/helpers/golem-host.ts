/**
 * A port of the Rust host side of Golem's ya-runtime-vm (v0.5.2; v0.4.2 is the same here):
 * `runtime/src/guest_agent_comm.rs` (GuestAgent: connect, one request at a time, message ids,
 * sub-messages in the order Rust appends them) and the notification handling of `vmrt.rs`
 * (a QUERY_OUTPUT(id, fd, 0, u64::MAX) for every OUTPUT_AVAILABLE). Written from the Rust
 * sources, never from gvmi-test's src/agent, so that a test using it checks the guest against
 * what a provider really sends and accepts. No gvmi-test extension is ever sent.
 *
 * The reply side is test/helpers/golem-response-parser.ts (response_parser.rs). On top of it this
 * file enforces what GuestAgent itself checks: the reply to a request must carry that request's
 * id (guest_agent_comm.rs:489-514 get_response, "Got response with different ID") and be of the kind the
 * request expects or ERR (516-524 match_error, "Invalid response").
 */
import { connect as netConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { StrictResponseParser, WireViolation, type GuestMessage, type Notification, type Response } from './golem-response-parser.js';

export { WireViolation } from './golem-response-parser.js';
export type { GuestMessage, Notification, Response } from './golem-response-parser.js';

/** guest_agent_comm.rs:17-33 MsgType */
export const MSG = { QUIT: 1, RUN_PROCESS: 2, KILL_PROCESS: 3, MOUNT_VOLUME: 4, UPLOAD_FILE: 5, QUERY_OUTPUT: 6, PUT_INPUT: 7, SYNC_FS: 8, NET_CTL: 9, NET_HOST: 10 } as const;

export const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** guest_agent_comm.rs:99-104 RedirectFdType */
export type RedirectFd =
  | { kind: 'file'; path: string }
  | { kind: 'pipeBlocking'; size: bigint }
  | { kind: 'pipeCyclic'; size: bigint };

/** guest_agent_comm.rs:397 RemoteCommandResult: Ok(value) or Err(the guest's u32 code). */
export type RemoteResult<T> = { ok: true; value: T } | { ok: false; code: number };

export interface RunProcessArgs {
  bin: string;
  /** argv[0] included, as lib.rs passes `run.args`. */
  argv: readonly string[];
  /** Some(env) → an ENV sub-message; lib.rs always sends the image Env (`Some(&env[..])`). */
  env?: readonly string[];
  uid: number;
  gid: number;
  /** `[Option<RedirectFdType>; 3]`: undefined for an fd sends no RFD for it. */
  fds: readonly [RedirectFd | undefined, RedirectFd | undefined, RedirectFd | undefined];
  cwd?: string;
  entrypoint?: boolean;
}

/**
 * The request encoder: `Message<T>` + `EncodeInto` of guest_agent_comm.rs:106-395. Little-endian
 * integers; BYTES = u64 length + bytes; ARRAY = u64 count + BYTES each; a message is u64 id, u8
 * type, sub-messages, then sub-message 0.
 */
export class RequestWriter {
  private readonly parts: Buffer[] = [];
  constructor(msgId: bigint, type: number) {
    this.u64(msgId);
    this.u8(type);
  }
  u8(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    this.parts.push(b);
    return this;
  }
  /** `impl EncodeInto for [u8]` (guest_agent_comm.rs:178-183); Rust's `str::as_bytes` is UTF-8. */
  bytes(v: string | Buffer): this {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.u64(BigInt(b.length));
    this.parts.push(b);
    return this;
  }
  /** `impl EncodeInto for [&[u8]]` (guest_agent_comm.rs:185-192) */
  array(v: readonly string[]): this {
    this.u64(BigInt(v.length));
    for (const s of v) this.bytes(s);
    return this;
  }
  /** SubMsgEnd: every message ends with sub-message 0. */
  end(): Buffer {
    this.u8(0);
    return Buffer.concat(this.parts);
  }
}

/** guest_agent_comm.rs:550-561 quit() */
export function encodeQuit(msgId: bigint): Buffer {
  return new RequestWriter(msgId, MSG.QUIT).end();
}

/** guest_agent_comm.rs:242-259 RedirectFdType::encode_into */
function encodeRedirect(w: RequestWriter, fd: RedirectFd): void {
  if (fd.kind === 'file') w.u8(0).bytes(fd.path);
  else if (fd.kind === 'pipeBlocking') w.u8(1).u64(fd.size);
  else w.u8(2).u64(fd.size);
}

/**
 * guest_agent_comm.rs:564-616 spawn_new_process, in Rust's order: BIN, ARG, ENV (if Some), UID,
 * GID, one RFD per fd that has one (ascending fd), CWD (if Some), ENT (if entrypoint), END.
 */
export function encodeRunProcess(msgId: bigint, a: RunProcessArgs): Buffer {
  const w = new RequestWriter(msgId, MSG.RUN_PROCESS);
  w.u8(1).bytes(a.bin);
  w.u8(2).array(a.argv);
  if (a.env) w.u8(3).array(a.env);
  w.u8(4).u32(a.uid);
  w.u8(5).u32(a.gid);
  a.fds.forEach((fd, i) => {
    if (fd) {
      w.u8(6).u32(i);
      encodeRedirect(w, fd);
    }
  });
  if (a.cwd !== undefined) w.u8(7).bytes(a.cwd);
  if (a.entrypoint) w.u8(8);
  return w.end();
}

/** guest_agent_comm.rs:652-665 kill(): ID then END. */
export function encodeKill(msgId: bigint, id: bigint): Buffer {
  return new RequestWriter(msgId, MSG.KILL_PROCESS).u8(1).u64(id).end();
}

/** guest_agent_comm.rs:667-684 mount(): TAG, PATH, END. */
export function encodeMount(msgId: bigint, tag: string, path: string): Buffer {
  return new RequestWriter(msgId, MSG.MOUNT_VOLUME).u8(1).bytes(tag).u8(2).bytes(path).end();
}

/**
 * guest_agent_comm.rs:686-706 add_hosts(): the iterator yields (hostname, ip) and each ENTRY is
 * encoded ip first, then hostname.
 */
export function encodeAddHosts(msgId: bigint, hosts: readonly (readonly [hostname: string, ip: string])[]): Buffer {
  const w = new RequestWriter(msgId, MSG.NET_HOST);
  for (const [hostname, ip] of hosts) w.u8(1).bytes(ip).bytes(hostname);
  return w.end();
}

/** guest_agent_comm.rs:708-729 create_network(): FLAGS(Add=1), ADDR, MASK, GATEWAY, IF, END. */
export function encodeCreateNetwork(msgId: bigint, addr: string, mask: string, gateway: string, iface: number): Buffer {
  return new RequestWriter(msgId, MSG.NET_CTL).u8(1).u16(1).u8(2).bytes(addr).u8(3).bytes(mask).u8(4).bytes(gateway).u8(6).u16(iface).end();
}

/** guest_agent_comm.rs:731-750 add_address(): FLAGS(Add=1), IF_ADDR, MASK, IF, END. */
export function encodeAddAddress(msgId: bigint, ifAddr: string, mask: string, iface: number): Buffer {
  return new RequestWriter(msgId, MSG.NET_CTL).u8(1).u16(1).u8(5).bytes(ifAddr).u8(3).bytes(mask).u8(6).u16(iface).end();
}

/** guest_agent_comm.rs:752-774 query_output(): ID, FD (u8), OFF, LEN, END. */
export function encodeQueryOutput(msgId: bigint, id: bigint, fd: number, off: bigint, len: bigint): Buffer {
  return new RequestWriter(msgId, MSG.QUERY_OUTPUT).u8(1).u64(id).u8(2).u8(fd).u8(3).u64(off).u8(4).u64(len).end();
}

/** A notification as received, with the connection it came on and its stream offset. */
export interface ReceivedNotification {
  notification: Notification;
  connection: number;
  offset: number;
}

/** What the guest did that Rust would not catch but that makes no sense (kept apart from WireViolations). */
export interface Anomaly {
  connection: number;
  offset: number;
  what: string;
}

export interface ConnectOptions {
  /** guest_agent_comm.rs:432-482: Rust retries once a second while the socket is missing (vmrt.rs passes 10). */
  timeoutSec?: number;
  /** Bounded wait for any single reply (Rust has none; a test must not hang). */
  replyTimeoutMs?: number;
  /**
   * vmrt.rs:392-416: for every OUTPUT_AVAILABLE, QUERY_OUTPUT(id, fd, 0, u64::MAX) and pass the
   * bytes on. On by default, as on every provider.
   */
  queryOnNotification?: boolean;
  /** Numbers this connection in reports (0, 1, ... across reconnections of one test). */
  connectionNumber?: number;
}

type Expect = 'ok' | 'okU64' | 'okBytes';

interface Waiting {
  msgId: bigint;
  expect: Expect;
  what: string;
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** One connection to the guest agent, driven as GuestAgent drives it. */
export class GolemHost {
  /** guest_agent_comm.rs:113,484-487 last_msg_id, starting at 0; get_new_msg_id pre-increments. */
  private lastMsgId = 0n;
  /** futures::lock::Mutex<GuestAgent>: one request (write + its reply) at a time. */
  private lock: Promise<void> = Promise.resolve();
  /** The mpsc channel of responses (guest_agent_comm.rs:399-429 reader): replies not yet taken by a request. */
  private readonly queuedResponses: GuestMessage[] = [];
  private waiting: Waiting | undefined;
  private readonly notificationQueue: ReceivedNotification[] = [];
  private notificationLoop: Promise<void> | undefined;
  private closed = false;
  private readonly closedPromise: Promise<void>;
  readonly parser = new StrictResponseParser();
  /** Every message parsed on this connection, in order. */
  readonly messages: GuestMessage[] = [];
  readonly notifications: ReceivedNotification[] = [];
  /** GuestAgent-level violations (id mismatch, wrong reply kind, unsolicited reply). */
  readonly violations: WireViolation[] = [];
  readonly anomalies: Anomaly[] = [];
  /** Bytes of output received through the notification handler, by `${id}:${fd}`. */
  readonly outputs = new Map<string, Buffer[]>();
  /** Results of the handler's queries that were not OK_BYTES, by `${id}:${fd}`. */
  readonly outputQueryErrors = new Map<string, number[]>();
  /** Bytes this host wrote before the first byte came back (0 unless the guest speaks first). */
  bytesBeforeFirstRequest = 0;
  private requestsSent = 0;
  private readonly listeners = new Set<() => void>();
  /** Set while a test plays a slow host: the handler queries nothing until it is released. */
  private held: Promise<void> | undefined;
  readonly connection: number;
  private readonly replyTimeoutMs: number;
  private readonly queryOnNotification: boolean;

  private constructor(private readonly socket: Socket, options: ConnectOptions) {
    this.connection = options.connectionNumber ?? 0;
    this.replyTimeoutMs = options.replyTimeoutMs ?? 60_000;
    this.queryOnNotification = options.queryOnNotification ?? true;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.closedPromise = new Promise((resolve) => {
      socket.once('close', () => {
        this.closed = true;
        this.parser.end();
        this.failWaiting(new Error(`connection ${this.connection} closed`));
        this.notify();
        resolve();
      });
    });
    socket.on('error', () => { /* 'close' follows */ });
  }

  /**
   * guest_agent_comm.rs:432-482 GuestAgent::connected: connect to the socket QEMU listens on,
   * retrying once a second while it does not exist (NotFound), any other error is final.
   */
  static async connect(socketPath: string, options: ConnectOptions = {}): Promise<GolemHost> {
    let remaining = options.timeoutSec ?? 10;
    for (;;) {
      const socket = netConnect(socketPath);
      try {
        await once(socket, 'connect');
        return new GolemHost(socket, options);
      } catch (error) {
        socket.destroy();
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        if (remaining <= 0) throw new Error(`Could not connect to the Guest Agent socket ${socketPath}`);
        remaining--;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private onData(chunk: Buffer): void {
    if (this.requestsSent === 0) this.bytesBeforeFirstRequest += chunk.length;
    const hadViolation = this.parser.violation !== undefined;
    for (const msg of this.parser.push(chunk)) {
      this.messages.push(msg);
      if (msg.kind === 'notification') this.onNotification(msg);
      else this.onResponse(msg);
    }
    // Rust's reader returns on the first parse error: every request now fails with it.
    if (!hadViolation && this.parser.violation) this.failWaiting(this.parser.violation);
    this.notify();
  }

  private onResponse(msg: Extract<GuestMessage, { kind: 'response' }>): void {
    const w = this.waiting;
    if (!w) {
      // Rust queues it in the channel; the next get_response takes it and fails on the id.
      this.queuedResponses.push(msg);
      return;
    }
    this.waiting = undefined;
    clearTimeout(w.timer);
    this.settle(w, msg);
  }

  /** guest_agent_comm.rs get_response + get_*_response + match_error. */
  private settle(w: Waiting, msg: Extract<GuestMessage, { kind: 'response' }>): void {
    if (msg.id !== w.msgId) {
      const v = new WireViolation(msg.offset, `reply with message id ${msg.id} to request ${w.msgId} (${w.what})`, 'guest_agent_comm.rs:506-512 "Got response with different ID"');
      this.violations.push(v);
      w.reject(v);
      return;
    }
    if (msg.resp.type !== w.expect && msg.resp.type !== 'err') {
      const v = new WireViolation(msg.offset, `reply ${msg.resp.type} to ${w.what} (expects ${w.expect} or err)`, 'guest_agent_comm.rs:516-524 match_error "Invalid response"');
      this.violations.push(v);
      w.reject(v);
      return;
    }
    w.resolve(msg.resp);
  }

  private onNotification(msg: Extract<GuestMessage, { kind: 'notification' }>): void {
    const n = msg.notification;
    if (n.type === 'outputAvailable' && n.fd !== 1 && n.fd !== 2) {
      this.anomalies.push({ connection: this.connection, offset: msg.offset, what: `OUTPUT_AVAILABLE for fd ${n.fd}` });
    }
    const received = { notification: n, connection: this.connection, offset: msg.offset };
    this.notifications.push(received);
    if (n.type === 'outputAvailable' && this.queryOnNotification) {
      this.notificationQueue.push(received);
      this.notificationLoop ??= this.drainNotifications();
    }
  }

  /**
   * guest_agent_comm.rs:399-429 + vmrt.rs:392-442: notifications are handled one after another by
   * one task, each taking the GuestAgent lock for its query. Rust's channel there holds 8; this
   * queue is unbounded (a full channel would stall Rust's reader, which is not what is tested).
   */
  private async drainNotifications(): Promise<void> {
    try {
      for (let next = this.notificationQueue.shift(); next; next = this.notificationQueue.shift()) {
        await this.held;
        const n = next.notification;
        if (n.type !== 'outputAvailable' || this.closed) continue;
        const key = `${n.id}:${n.fd}`;
        // vmrt.rs:403 casts the fd to u8.
        const result = await this.queryOutput(n.id, n.fd & 0xff, 0n, U64_MAX).catch(() => undefined);
        if (result?.ok) {
          const list = this.outputs.get(key) ?? [];
          list.push(result.value);
          this.outputs.set(key, list);
        } else if (result) {
          const list = this.outputQueryErrors.get(key) ?? [];
          list.push(result.code);
          this.outputQueryErrors.set(key, list);
        }
        this.notify();
      }
    } finally {
      this.notificationLoop = undefined;
      this.notify();
    }
  }

  private failWaiting(error: Error): void {
    const w = this.waiting;
    if (!w) return;
    this.waiting = undefined;
    clearTimeout(w.timer);
    w.reject(error);
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Writes one request and waits for its reply, holding the lock as GuestAgent's Mutex does. */
  private request(type: number, build: (msgId: bigint) => Buffer, expect: Expect, what: string): Promise<Response> {
    const run = async (): Promise<Response> => {
      if (this.parser.violation) throw this.parser.violation;
      if (this.closed) throw new Error(`connection ${this.connection} is closed (${what})`);
      this.lastMsgId += 1n;
      const msgId = this.lastMsgId;
      const reply = new Promise<Response>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (this.waiting?.msgId === msgId) this.waiting = undefined;
          reject(new Error(`no reply to ${what} (message ${msgId}, type ${type}) within ${this.replyTimeoutMs} ms`));
        }, this.replyTimeoutMs);
        const w: Waiting = { msgId, expect, what, resolve, reject, timer };
        const queued = this.queuedResponses.shift();
        if (queued && queued.kind === 'response') {
          clearTimeout(timer);
          this.settle(w, queued);
        } else {
          this.waiting = w;
        }
      });
      this.requestsSent++;
      this.socket.write(build(msgId));
      return reply;
    };
    const result = this.lock.then(run, run);
    this.lock = result.then(() => {}, () => {});
    return result;
  }

  private static result<T>(r: Response, value: (r: Response) => T): RemoteResult<T> {
    return r.type === 'err' ? { ok: false, code: r.code } : { ok: true, value: value(r) };
  }

  async quit(): Promise<RemoteResult<void>> {
    return GolemHost.result(await this.request(MSG.QUIT, (id) => encodeQuit(id), 'ok', 'QUIT'), () => undefined);
  }

  async runProcess(args: RunProcessArgs): Promise<RemoteResult<bigint>> {
    const r = await this.request(MSG.RUN_PROCESS, (id) => encodeRunProcess(id, args), 'okU64', `RUN_PROCESS ${args.bin}`);
    return GolemHost.result(r, (x) => (x.type === 'okU64' ? x.value : 0n));
  }

  async kill(id: bigint): Promise<RemoteResult<void>> {
    return GolemHost.result(await this.request(MSG.KILL_PROCESS, (m) => encodeKill(m, id), 'ok', `KILL_PROCESS ${id}`), () => undefined);
  }

  async mount(tag: string, path: string): Promise<RemoteResult<void>> {
    return GolemHost.result(await this.request(MSG.MOUNT_VOLUME, (m) => encodeMount(m, tag, path), 'ok', `MOUNT_VOLUME ${tag} ${path}`), () => undefined);
  }

  async addHosts(hosts: readonly (readonly [hostname: string, ip: string])[]): Promise<RemoteResult<void>> {
    return GolemHost.result(await this.request(MSG.NET_HOST, (m) => encodeAddHosts(m, hosts), 'ok', 'NET_HOST'), () => undefined);
  }

  async createNetwork(addr: string, mask: string, gateway: string, iface: number): Promise<RemoteResult<void>> {
    return GolemHost.result(await this.request(MSG.NET_CTL, (m) => encodeCreateNetwork(m, addr, mask, gateway, iface), 'ok', 'NET_CTL create_network'), () => undefined);
  }

  async addAddress(ifAddr: string, mask: string, iface: number): Promise<RemoteResult<void>> {
    return GolemHost.result(await this.request(MSG.NET_CTL, (m) => encodeAddAddress(m, ifAddr, mask, iface), 'ok', 'NET_CTL add_address'), () => undefined);
  }

  async queryOutput(id: bigint, fd: number, off: bigint, len: bigint): Promise<RemoteResult<Buffer>> {
    const r = await this.request(MSG.QUERY_OUTPUT, (m) => encodeQueryOutput(m, id, fd, off, len), 'okBytes', `QUERY_OUTPUT ${id}:${fd} off ${off} len ${len}`);
    return GolemHost.result(r, (x) => (x.type === 'okBytes' ? x.bytes : Buffer.alloc(0)));
  }

  /**
   * A slow host: notifications queue up unanswered until the returned function is called (in
   * Rust, the handler waits the same way while a long request holds the GuestAgent lock).
   */
  holdQueries(): () => void {
    let release!: () => void;
    this.held = new Promise<void>((r) => { release = r; });
    return () => {
      this.held = undefined;
      release();
    };
  }

  /** Output received for (id, fd) through the notification handler so far. */
  output(id: bigint, fd: number): Buffer {
    return Buffer.concat(this.outputs.get(`${id}:${fd}`) ?? []);
  }

  /** The PROCESS_DIED notification for `id` on this connection, if any. */
  died(id: bigint): Extract<Notification, { type: 'processDied' }> | undefined {
    for (const { notification: n } of this.notifications) if (n.type === 'processDied' && n.id === id) return n;
    return undefined;
  }

  /** Whether the notification handler has nothing queued or in flight. */
  get idle(): boolean {
    return this.notificationLoop === undefined && this.notificationQueue.length === 0 && this.waiting === undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves once `cond()` holds (checked after every message and state change), or rejects after `timeoutMs`. */
  waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        let ok = false;
        try {
          ok = cond();
        } catch (error) {
          done();
          reject(error as Error);
          return;
        }
        if (ok) {
          done();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${this.parser.violation ? `; stream stopped at ${this.parser.violation.message}` : ''}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  /** Waits for the PROCESS_DIED of `id` on this connection. */
  async waitDied(id: bigint, timeoutMs: number): Promise<Extract<Notification, { type: 'processDied' }>> {
    await this.waitFor(() => this.died(id) !== undefined, timeoutMs, `PROCESS_DIED of process ${id}`);
    return this.died(id)!;
  }

  /**
   * Waits until the guest can send nothing more about pipe-backed process `id`: its PROCESS_DIED
   * has arrived and the notification handler is idle (every OUTPUT_AVAILABLE received is answered).
   * No quiet period is needed, because of how upstream keeps a pull buffer (init.c:1793-1878):
   * a buffer going from empty to non-empty always sends OUTPUT_AVAILABLE, the handler's query
   * (len U64_MAX) empties it, and a dead process is deleted by the query, or the reap, that
   * leaves both its buffers empty. Messages arrive in the order the guest wrote them, so take
   * the last thing received about `id`: if it is a handler's reply after PROCESS_DIED, the other
   * buffer was empty when the guest answered it (had it been filled, its notification would
   * have come before that reply and been answered after it, so the reply would not be the
   * last); with no reply after PROCESS_DIED, both buffers were empty at the reap. Either way the
   * process is gone and nothing can follow. A guest that broke this would keep the process, and
   * the test's own QUERY_OUTPUT that expects ESRCH would fail.
   * Only for a handler that queries every notification and is not held (holdQueries).
   */
  async waitForgotten(id: bigint, timeoutMs: number): Promise<void> {
    await this.waitFor(() => this.died(id) !== undefined && this.idle, timeoutMs, `PROCESS_DIED of process ${id} and the notification handler to finish`);
  }

  /** Closes this end (the guest sees its host disconnect) and waits for the socket to close. */
  async close(): Promise<void> {
    if (!this.closed) this.socket.end();
    await Promise.race([this.closedPromise, new Promise((r) => setTimeout(r, 5000))]);
    if (!this.closed) this.socket.destroy();
    await this.closedPromise;
  }

  /** Waits for the guest to close the connection (e.g. after QUIT, when the VM powers off). */
  async waitClosed(timeoutMs: number): Promise<void> {
    await this.waitFor(() => this.closed, timeoutMs, `connection ${this.connection} to close`);
  }

  /**
   * Everything wrong with this connection's stream: the parser's violation (with a hex dump), the
   * GuestAgent-level ones, replies nobody asked for. Empty means the Rust host accepted it all.
   */
  problems(): string[] {
    const out: string[] = [];
    const v = this.parser.violation;
    if (v) out.push(`connection ${this.connection}: ${v.message}; bytes ${this.parser.around(v.offset)}`);
    for (const x of this.violations) out.push(`connection ${this.connection}: ${x.message}; bytes ${this.parser.around(x.offset)}`);
    for (const q of this.queuedResponses) out.push(`connection ${this.connection}: byte ${q.offset}: a reply (id ${q.kind === 'response' ? q.id : '?'}) no request was waiting for (guest_agent_comm.rs:489-514 get_response would fail on the id)`);
    for (const a of this.anomalies) out.push(`connection ${a.connection}: byte ${a.offset}: ${a.what}`);
    return out;
  }
}
