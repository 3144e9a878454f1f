/**
 * Serves a started VM over WebSocket (`gvmi-test serve`): any number of clients, each running
 * processes and moving files concurrently. A client that disconnects loses its processes (they
 * are killed), never the VM. Access needs the random token in the URL.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { lstat, mkdtemp, open, readFile, readlink, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { GvmiTestError } from '../errors.js';
import type { GuestProcess } from '../vm/guest-process.js';
import type { StartedVm } from '../vm/started-vm.js';
import { locateInVolumes } from '../vm/transfer.js';
import { DOWNLOAD_CHUNK_BYTES, MAX_FRAME_BYTES, validateClientMessage, type ClientMessage, type ServerMessage } from './ws-protocol.js';

const HARD_FRAME_LIMIT = 64 * 1024 * 1024;

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Defaults to 24 random bytes, base64url. */
  token?: string;
  logger?: Logger;
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
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly ws: WebSocket,
    private readonly vm: StartedVm,
    private readonly scratch: string,
    private readonly logger: Logger,
    private readonly onStop: () => Promise<void>,
  ) {
    // Frames are handled one after another, in arrival order: an upload's chunks, or stdin
    // after its exec, must not overtake each other.
    ws.on('message', (data, isBinary) => {
      this.queue = this.queue.then(() => this.onFrame(data as Buffer, isBinary));
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
          accelerator: this.vm.info.accelerator, volumes: this.vm.volumes.map((v) => ({ guestPath: v.guestPath, hostPath: v.hostPath })),
          consoleTail: await this.vm.consoleTail(20),
        } });
        return;
      case 'upload': {
        let upload = this.uploads.get(m.id);
        if (!upload) {
          if (m.offset !== 0) throw new GvmiTestError('usage', 'an upload starts at offset 0');
          locateInVolumes(this.vm.volumes, m.path); // refuse early, with the provider's reason
          const file = join(this.scratch, `upload-${randomBytes(8).toString('hex')}`);
          upload = { path: m.path, file, handle: await open(file, 'w', 0o600) };
          this.uploads.set(m.id, upload);
        }
        const bytes = Buffer.from(m.data, 'base64');
        await upload.handle.write(bytes, 0, bytes.length, m.offset);
        return;
      }
      case 'upload-end': {
        const upload = this.uploads.get(m.id);
        if (!upload) throw new GvmiTestError('usage', `no upload with id ${JSON.stringify(m.id)}`);
        this.uploads.delete(m.id);
        try {
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
          await this.vm.download(m.path, file);
          const st = await lstat(file);
          if (st.isSymbolicLink()) {
            this.send({ event: 'downloaded', id: m.id, size: 0, mode: 0o777, symlink: await readlink(file) });
            return;
          }
          if (!st.isFile()) throw new GvmiTestError('transfer.failed', `${m.path} is a directory: download its files one by one`);
          const content = await readFile(file);
          for (let offset = 0; offset < content.length; offset += DOWNLOAD_CHUNK_BYTES) {
            this.send({ event: 'data', id: m.id, offset, data: content.subarray(offset, offset + DOWNLOAD_CHUNK_BYTES).toString('base64') });
          }
          this.send({ event: 'downloaded', id: m.id, size: content.length, mode: st.mode & 0o777 });
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

  async dispose(): Promise<void> {
    const running = [...this.processes.values()];
    this.processes.clear();
    await Promise.all(running.map((p) => p.kill('SIGKILL').catch(() => {})));
    for (const u of this.uploads.values()) {
      await u.handle.close().catch(() => {});
      await rm(u.file, { force: true });
    }
    this.uploads.clear();
    this.logger.debug({ killed: running.length }, 'client disconnected');
  }
}

export async function serveVm(vm: StartedVm, options: ServeOptions = {}): Promise<VmServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(24).toString('base64url');
  const logger = options.logger ?? pino({ level: 'silent' });
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
      if (sameToken(tokenOf(info.req), token)) done(true);
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
    await vm.stop();
    stopResolve();
  };

  wss.on('connection', (ws) => {
    const connection = new Connection(ws, vm, scratch, logger, onStop);
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
