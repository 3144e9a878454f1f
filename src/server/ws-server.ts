/**
 * Serves a VM over WebSocket (`gvmi-test serve`): any number of clients, each running processes
 * and moving files concurrently. A client that disconnects loses its processes (they are
 * killed), never the VM. Access needs the random token in the URL. The VM is any VmLike: one
 * started here, or one served elsewhere (a RemoteVm) passed on.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { lstat, mkdtemp, open, readlink, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { GvmiTestError } from '../errors.js';
import type { GuestProcess } from '../vm/guest-process.js';
import type { VmLike } from '../vm/vm-like.js';
import { locateInVolumes } from '../vm/transfer.js';
import { sendPaced } from './paced-send.js';
import { DOWNLOAD_CHUNK_BYTES, MAX_FRAME_BYTES, validateClientMessage, type ClientMessage, type ServerMessage } from './ws-protocol.js';

const HARD_FRAME_LIMIT = 64 * 1024 * 1024;
/** Default for the largest file moved either way: a cap, so no client makes the host hold or write without end. */
export const DEFAULT_MAX_TRANSFER_BYTES = 4 * 1024 ** 3;
/** Bytes of frames received and not yet handled above which a client is not read from. */
const RECEIVE_HIGH_WATER_BYTES = 8 * 1024 * 1024;
/** Uploads one client may have open at once (each holds a file descriptor). */
const MAX_OPEN_UPLOADS = 16;
/** Refused uploads remembered per client (to drop their later chunks quietly). */
const MAX_REFUSED_UPLOADS = 1024;

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Defaults to 24 random bytes, base64url. */
  token?: string;
  logger?: Logger;
  /** Largest file a client may download or upload (default 4 GiB); larger ones get `transfer.too-large`. */
  maxTransferBytes?: number;
}

export interface VmServer {
  url: string;
  host: string;
  port: number;
  token: string;
  /** Resolves when a client asked the VM to stop (it is stopped by then). */
  readonly stopRequested: Promise<void>;
  close(): Promise<void>;
}

function tokenOf(req: IncomingMessage): string | undefined {
  const url = new URL(req.url ?? '/', 'http://x');
  const fromQuery = url.searchParams.get('token');
  if (fromQuery) return fromQuery;
  const auth = req.headers.authorization;
  return auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
}

function sameToken(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

interface Upload {
  path: string;
  file: string;
  handle: FileHandle;
}

/** One client's view: its processes and half-done uploads, all cleaned up when it goes. */
class Connection {
  private readonly processes = new Map<string, GuestProcess>();
  private readonly uploads = new Map<string, Upload>();
  /** Uploads refused part-way: their remaining chunks and their upload-end are dropped quietly. */
  private readonly refusedUploads = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private unhandledBytes = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly vm: VmLike,
    private readonly scratch: string,
    private readonly logger: Logger,
    private readonly onStop: () => Promise<void>,
    private readonly maxTransferBytes: number,
  ) {
    // Frames are handled one after another, in arrival order: an upload's chunks, or stdin
    // after its exec, must not overtake each other. A client sending faster than they are
    // handled (an upload to a slow disk) is not read from meanwhile, so its frames wait in its
    // own socket, not in our memory.
    ws.on('message', (data, isBinary) => {
      const bytes = (data as Buffer).length;
      this.unhandledBytes += bytes;
      if (this.unhandledBytes > RECEIVE_HIGH_WATER_BYTES) ws.pause();
      this.queue = this.queue
        .then(() => this.onFrame(data as Buffer, isBinary))
        .catch((error: unknown) => logger.debug({ error }, 'frame handling failed'))
        .finally(() => {
          this.unhandledBytes -= bytes;
          if (this.unhandledBytes <= RECEIVE_HIGH_WATER_BYTES && ws.isPaused) ws.resume();
        });
    });
    ws.on('close', () => void this.dispose());
    ws.on('error', (error) => logger.debug({ error }, 'client socket error'));
  }

  send(message: ServerMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(message));
  }

  private fail(id: string | undefined, error: unknown): void {
    if (error instanceof GvmiTestError) {
      this.send({ event: 'error', ...(id ? { id } : {}), code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) });
    } else {
      this.send({ event: 'error', ...(id ? { id } : {}), code: 'server.internal', message: (error as Error).message });
    }
  }

  private async onFrame(data: Buffer, isBinary: boolean): Promise<void> {
    if (data.length > MAX_FRAME_BYTES) {
      this.send({ event: 'error', code: 'protocol.frame-too-large', message: `a frame is at most ${MAX_FRAME_BYTES} bytes (got ${data.length}); send uploads in chunks` });
      return;
    }
    if (isBinary) {
      this.send({ event: 'error', code: 'protocol.binary', message: 'binary frames are not used: send JSON text frames' });
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.toString('utf8'));
    } catch {
      this.send({ event: 'error', code: 'protocol.bad-json', message: 'the frame is not valid JSON' });
      return;
    }
    const problem = validateClientMessage(parsed);
    if (problem) {
      const id = (parsed as { id?: unknown })?.id;
      this.send({ event: 'error', ...(typeof id === 'string' ? { id } : {}), code: 'protocol.bad-request', message: problem });
      return;
    }
    const message = parsed as ClientMessage;
    try {
      await this.handle(message);
    } catch (error) {
      this.fail(message.id, error);
    }
  }

  private process(id: string): GuestProcess {
    const p = this.processes.get(id);
    if (!p) throw new GvmiTestError('usage', `no running process with id ${JSON.stringify(id)} on this connection`);
    return p;
  }

  private async handle(m: ClientMessage): Promise<void> {
    switch (m.op) {
      case 'exec': {
        if (this.processes.has(m.id)) throw new GvmiTestError('usage', `id ${JSON.stringify(m.id)} is already running`);
        const p = await this.vm.spawn(m.command, {
          ...(m.env ? { env: m.env } : {}),
          ...(m.cwd ? { cwd: m.cwd } : {}),
          ...(m.stdin ? { stdin: 'pipe' as const } : {}),
          ...(m.timeoutMs ? { timeoutMs: m.timeoutMs } : {}),
          maxBuffer: 0,
        });
        this.processes.set(m.id, p);
        this.send({ event: 'started', id: m.id });
        p.on('stdout', (d) => this.send({ event: 'stdout', id: m.id, data: d.toString('base64') }));
        p.on('stderr', (d) => this.send({ event: 'stderr', id: m.id, data: d.toString('base64') }));
        p.wait().then(
          (r) => this.send({ event: 'exit', id: m.id, exitCode: r.exitCode, signal: r.signal, durationMs: r.durationMs, timedOut: r.timedOut }),
          (error: unknown) => this.fail(m.id, error),
        ).finally(() => this.processes.delete(m.id));
        return;
      }
      case 'stdin': {
        const p = this.process(m.id);
        const data = m.data ? Buffer.from(m.data, 'base64') : Buffer.alloc(0);
        if (m.eof) await p.end(data);
        else await p.write(data);
        return;
      }
      case 'signal':
        await this.process(m.id).kill(m.signal);
        this.send({ event: 'ok', id: m.id });
        return;
      case 'kill':
        await this.process(m.id).kill('SIGKILL');
        this.send({ event: 'ok', id: m.id });
        return;
      case 'stats':
        this.send({ event: 'stats', id: m.id, stats: { ...(await this.vm.stats()), overlayUsage: await this.vm.overlayUsage(5) } });
        return;
      case 'info':
        this.send({ event: 'info', id: m.id, info: {
          image: this.vm.info.image, metadata: this.vm.info.metadata, shadowed: this.vm.info.shadowed,
          accelerator: this.vm.info.accelerator, runtimeVersion: this.vm.info.runtimeVersion, volumes: this.vm.volumes.map((v) => ({ guestPath: v.guestPath, hostPath: v.hostPath })),
          consoleTail: await this.vm.consoleTail(20),
        } });
        return;
      case 'upload': {
        if (this.refusedUploads.has(m.id)) return;
        try {
          await this.uploadChunk(m.id, m.path, m.offset, Buffer.from(m.data, 'base64'));
        } catch (error) {
          // one error per upload: its later chunks are dropped instead of each failing again
          await this.abortUpload(m.id);
          this.refusedUploads.add(m.id);
          // a client that never sends upload-end must not grow this without end: forget the oldest
          if (this.refusedUploads.size > MAX_REFUSED_UPLOADS) this.refusedUploads.delete(this.refusedUploads.values().next().value!);
          throw error;
        }
        return;
      }
      case 'upload-end': {
        if (this.refusedUploads.delete(m.id)) return;
        const upload = this.uploads.get(m.id);
        if (!upload) throw new GvmiTestError('usage', `no upload with id ${JSON.stringify(m.id)}`);
        this.uploads.delete(m.id);
        try {
          // The client's permission bits (a `#!` script must stay executable); else the private 0600.
          if (m.mode !== undefined) await upload.handle.chmod(m.mode);
          await upload.handle.close();
          await this.vm.upload(upload.file, upload.path);
        } finally {
          await rm(upload.file, { force: true });
        }
        this.send({ event: 'ok', id: m.id });
        return;
      }
      case 'download': {
        const file = join(this.scratch, `download-${randomBytes(8).toString('hex')}`);
        try {
          // The server's cap is the copy's budget: a guest cannot fill the host's disk before the check below.
          await this.vm.download(m.path, file, { limits: { maxBytes: this.maxTransferBytes } });
          const st = await lstat(file);
          if (st.isSymbolicLink()) {
            this.send({ event: 'downloaded', id: m.id, size: 0, mode: 0o777, symlink: await readlink(file) });
            return;
          }
          if (!st.isFile()) throw new GvmiTestError('transfer.failed', `${m.path} is a directory: download its files one by one`);
          await this.sendFile(m.id, m.path, file, st.mode & 0o777);
        } finally {
          await rm(file, { recursive: true, force: true });
        }
        return;
      }
      case 'stop':
        this.send({ event: 'ok', id: m.id });
        await this.onStop();
        return;
    }
  }

  private async uploadChunk(id: string, path: string, offset: number, bytes: Buffer): Promise<void> {
    // checked on every chunk, before writing: a client streaming without end (or writing far
    // past the end) stops at the cap instead of filling the host's disk
    if (offset + bytes.length > this.maxTransferBytes) {
      throw new GvmiTestError('transfer.too-large', `${path}: the upload goes past ${this.maxTransferBytes} bytes, the most this server accepts for one file`, {
        hint: 'start gvmi-test serve with a larger --max-transfer-mib, or split the file',
      });
    }
    let upload = this.uploads.get(id);
    if (!upload) {
      if (offset !== 0) throw new GvmiTestError('usage', 'an upload starts at offset 0');
      if (this.uploads.size >= MAX_OPEN_UPLOADS) throw new GvmiTestError('usage', `at most ${MAX_OPEN_UPLOADS} uploads at once per connection: end one first`);
      locateInVolumes(this.vm.volumes, path); // refuse early, with the provider's reason
      const file = join(this.scratch, `upload-${randomBytes(8).toString('hex')}`);
      upload = { path, file, handle: await open(file, 'w', 0o600) };
      this.uploads.set(id, upload);
    }
    await upload.handle.write(bytes, 0, bytes.length, offset);
  }

  private async abortUpload(id: string): Promise<void> {
    const upload = this.uploads.get(id);
    if (!upload) return;
    this.uploads.delete(id);
    await upload.handle.close().catch(() => {});
    await rm(upload.file, { force: true });
  }

  /**
   * Streams a file from the scratch directory in chunks, waiting while the client lags, so the
   * server holds a few MiB whatever the file's size. Over the cap, nothing is sent but the error.
   */
  private async sendFile(id: string, guestPath: string, file: string, mode: number): Promise<void> {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size > this.maxTransferBytes) {
        throw new GvmiTestError('transfer.too-large', `${guestPath}: ${size} bytes, more than the ${this.maxTransferBytes} this server sends for one file`, {
          hint: 'start gvmi-test serve with a larger --max-transfer-mib, or compress or split the file in the guest',
        });
      }
      const buffer = Buffer.allocUnsafe(DOWNLOAD_CHUNK_BYTES);
      let offset = 0;
      while (offset < size) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(DOWNLOAD_CHUNK_BYTES, size - offset), offset);
        if (bytesRead === 0) break;
        try {
          await sendPaced(this.ws, JSON.stringify({ event: 'data', id, offset, data: buffer.subarray(0, bytesRead).toString('base64') } satisfies ServerMessage));
        } catch (error) {
          throw new GvmiTestError('transfer.failed', `${guestPath}: ${(error as Error).message}`);
        }
        offset += bytesRead;
      }
      this.send({ event: 'downloaded', id, size: offset, mode });
    } finally {
      await handle.close();
    }
  }

  async dispose(): Promise<void> {
    const running = [...this.processes.values()];
    this.processes.clear();
    await Promise.all(running.map((p) => p.kill('SIGKILL').catch(() => {})));
    for (const u of this.uploads.values()) {
      await u.handle.close().catch(() => {});
      await rm(u.file, { force: true });
    }
    this.uploads.clear();
    this.refusedUploads.clear();
    this.logger.debug({ killed: running.length }, 'client disconnected');
  }
}

/** Serves `vm`; a client's `stop` ends it (a StartedVm is stopped, a RemoteVm disconnected). */
export async function serveVm(vm: VmLike, options: ServeOptions = {}): Promise<VmServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(24).toString('base64url');
  const logger = options.logger ?? pino({ level: 'silent' });
  const maxTransferBytes = options.maxTransferBytes ?? DEFAULT_MAX_TRANSFER_BYTES;
  const scratch = await mkdtemp(join(tmpdir(), 'gvmi-serve-'));
  const http = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('gvmi-test serve speaks WebSocket only (docs/ws-protocol.md)\n');
  });
  const wss = new WebSocketServer({
    server: http,
    // Frames past MAX_FRAME_BYTES get an error event and the connection stays; past this hard
    // limit (memory) the socket is closed with 1009.
    maxPayload: HARD_FRAME_LIMIT,
    verifyClient: (info, done) => {
      // Browsers always send Origin on a WebSocket upgrade and other clients have no reason to:
      // a web page open in the user's browser can reach a loopback port (DNS rebinding too), so
      // it is refused whatever it carries, before the token is even looked at.
      if (info.req.headers.origin !== undefined) done(false, 403, 'Forbidden: browser pages may not connect');
      else if (sameToken(tokenOf(info.req), token)) done(true);
      else done(false, 401, 'Unauthorized: a valid token is required');
    },
  });
  const connections = new Set<Connection>();
  let stopResolve!: () => void;
  const stopRequested = new Promise<void>((r) => { stopResolve = r; });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const client of wss.clients) client.close(1001, 'server stopping');
      await Promise.all([...connections].map((c) => c.dispose()));
      await new Promise<void>((r) => wss.close(() => r()));
      await new Promise<void>((r) => http.close(() => r()));
      for (const client of wss.clients) client.terminate();
      await rm(scratch, { recursive: true, force: true });
    })();
    return closing;
  };

  const onStop = async (): Promise<void> => {
    for (const c of connections) c.send({ event: 'stopping' });
    await close();
    await vm[Symbol.asyncDispose]();
    stopResolve();
  };

  wss.on('connection', (ws) => {
    const connection = new Connection(ws, vm, scratch, logger, onStop, maxTransferBytes);
    connections.add(connection);
    ws.on('close', () => connections.delete(connection));
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, host, () => resolve());
  });
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { url: `ws://${urlHost}:${port}/?token=${token}`, host, port, token, stopRequested, close };
}
