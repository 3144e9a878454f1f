/**
 * `gvmi-test serve` driven from other processes: concurrent clients, transfers, tokens, bad
 * input, and a killed client's processes.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectVm, type RemoteVm } from '../../src/server/ws-client.js';
import '../../src/vitest/index.js';

const cli = resolve('dist/cli/main.js');
let server: ResultPromise;
let url: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-serve-test-'));
  server = execa('node', [cli, 'serve', inject('tinyImage'), '--json'], { reject: false });
  url = await new Promise<string>((resolvePromise, reject) => {
    let out = '';
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolvePromise((JSON.parse(line) as { url: string }).url);
    });
    void server.then((r) => reject(new Error(`serve exited: ${r.stderr}`)));
  });
}, 120_000);

afterAll(async () => {
  server.kill('SIGINT');
  await server;
});

function raw(u: string): Promise<{ ws?: WebSocket; status?: number }> {
  return new Promise((res) => {
    const ws = new WebSocket(u);
    ws.once('open', () => res({ ws }));
    ws.once('unexpected-response', (_req, r) => res({ status: r.statusCode }));
    ws.once('error', () => {});
  });
}

/** Messages in arrival order: several can arrive in one read, before a `once` is re-armed. */
function messageQueue(ws: WebSocket): () => Promise<Record<string, unknown>> {
  const queued: Record<string, unknown>[] = [];
  let waiting: ((m: Record<string, unknown>) => void) | undefined;
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as Record<string, unknown>;
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w(m);
    } else {
      queued.push(m);
    }
  });
  return () => (queued.length > 0 ? Promise.resolve(queued.shift()!) : new Promise((r) => { waiting = r; }));
}

describe('gvmi-test serve', () => {
  it('prints a loopback URL with a random token', () => {
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{32}$/);
  });

  it('refuses a missing or wrong token with 401', async () => {
    expect((await raw(url.replace(/\?token=.*/, ''))).status).toBe(401);
    expect((await raw(url.replace(/token=.*/, 'token=wrong'))).status).toBe(401);
  });

  it('two clients run commands concurrently', async () => {
    const [a, b] = await Promise.all([connectVm(url), connectVm(url)]);
    try {
      const [ra, rb] = await Promise.all([
        a.exec('for i in 1 2 3 4 5; do echo a$i; sleep 0.1; done'),
        b.exec('for i in 1 2 3 4 5; do echo b$i; sleep 0.1; done; exit 2'),
      ]);
      expect(ra.stdout).toBe('a1\na2\na3\na4\na5\n');
      expect(rb).toExitWith(2);
      expect(rb.stdout).toBe('b1\nb2\nb3\nb4\nb5\n');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('upload -> exec -> download round trip, with the matchers working on a remote VM', async () => {
    await using vm = await connectVm(url);
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 'x'); // several upload chunks
    await writeFile(join(dir, 'in.txt'), big);
    await vm.upload(join(dir, 'in.txt'), '/golem/input/in.txt');
    expect(await vm.exec('wc -c < /golem/input/in.txt; tr x y < /golem/input/in.txt > /golem/output/out.txt')).toHaveStdout(String(big.length));
    await vm.download('/golem/output/out.txt', join(dir, 'out.txt'));
    expect((await readFile(join(dir, 'out.txt'))).equals(Buffer.alloc(big.length, 'y'))).toBe(true);
    await expect(vm).toHaveFile('/golem/output/out.txt');
    await expect(vm).toShadow('/golem/input/baked.txt');
  });

  it('transfers outside volumes and path traversal are refused', async () => {
    await using vm = await connectVm(url);
    await writeFile(join(dir, 'x'), 'x');
    await expect(vm.upload(join(dir, 'x'), '/golem/input/../../etc/x')).rejects.toMatchObject({ code: 'transfer.not-in-volume' });
    await expect(vm.download('/etc/passwd', join(dir, 'p'))).rejects.toMatchObject({ code: 'transfer.not-in-volume' });
  });

  it('malformed JSON, unknown ops and oversized frames get an error event; the connection stays up', async () => {
    const { ws } = await raw(url);
    const next = messageQueue(ws!);
    ws!.send('{not json');
    expect(await next()).toMatchObject({ event: 'error', code: 'protocol.bad-json' });
    ws!.send(JSON.stringify({ op: 'format-disk', id: '1' }));
    expect(await next()).toMatchObject({ event: 'error', id: '1', code: 'protocol.bad-request' });
    ws!.send('x'.repeat(3 * 1024 * 1024));
    expect(await next()).toMatchObject({ event: 'error', code: 'protocol.frame-too-large' });
    ws!.send(JSON.stringify({ op: 'exec', id: '2', command: ['echo', 'still here'] }));
    expect(await next()).toMatchObject({ event: 'started', id: '2' });
    expect(await next()).toMatchObject({ event: 'stdout', id: '2', data: Buffer.from('still here\n').toString('base64') });
    ws!.close();
  });

  it('a killed client loses its processes, not the VM', async () => {
    const script = `
      import { connectVm } from ${JSON.stringify(resolve('dist/index.js'))};
      const vm = await connectVm(process.argv[1]);
      await vm.spawn(['sleep', '4321']);
      console.log('spawned');
      setInterval(() => {}, 1000);`;
    const client = execa('node', ['--input-type=module', '-e', script, url], { reject: false });
    await new Promise<void>((r) => client.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('spawned')) r(); }));
    await using observer = await connectVm(url);
    expect((await observer.exec('ps -o args | grep -c "^sleep 4321" || true')).stdout.trim()).toBe('1');
    client.kill('SIGKILL');
    await client;
    let left = '1';
    for (let i = 0; i < 50 && left !== '0'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = (await observer.exec('ps -o args | grep -c "^sleep 4321" || true')).stdout.trim();
    }
    expect(left).toBe('0');
    expect(await observer.exec('echo vm alive')).toHaveStdout('vm alive');
  });

  it('exec --connect streams output and exits with the guest status', async () => {
    const r = await execa('node', [cli, 'exec', '--connect', url, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7'], { reject: false });
    expect(r.stdout).toBe('out');
    expect(r.stderr).toBe('err');
    expect(r.exitCode).toBe(7);
  });
});

describe('a stop request', () => {
  it('shuts the served VM down and ends the server', async () => {
    const own = execa('node', [cli, 'serve', inject('tinyImage')], { reject: false });
    const ownUrl = await new Promise<string>((r) => own.stdout!.on('data', (d: Buffer) => r(d.toString().trim().split('\n')[0]!)));
    const vm: RemoteVm = await connectVm(ownUrl);
    await vm.shutdown();
    const result = await own;
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('gvmi-test: stopped');
  });
});
