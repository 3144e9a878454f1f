/**
 * `gvmi-test serve` driven from other processes: concurrent clients, transfers, tokens, bad
 * input, a killed client's processes, how the URL reaches `exec` without showing its token to
 * other users, browser pages, and transfers bigger than memory or than the cap.
 */
import { chmod, mkdtemp, open, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectVm, type RemoteVm } from '../../src/server/ws-client.js';
import { serveVm } from '../../src/server/ws-server.js';
import { runHostScript } from '../../src/requestor/host-script.js';
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

function raw(u: string, headers: Record<string, string> = {}): Promise<{ ws?: WebSocket; status?: number }> {
  return new Promise((res) => {
    const ws = new WebSocket(u, { headers });
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

  it('refuses a browser page (an Origin header) with 403, even with the right token', async () => {
    expect((await raw(url, { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await raw(url, { Origin: 'null' })).status).toBe(403);
    const { ws } = await raw(url);
    expect(ws).toBeDefined();
    ws!.close();
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

  it('an upload keeps its permission bits: runHostScript runs a #! script on a served VM as itself', async () => {
    await using vm = await connectVm(url);
    await writeFile(join(dir, 'job.sh'), '#!/bin/sh\necho "ran as $0 with $1"\n');
    await chmod(join(dir, 'job.sh'), 0o644); // a private copy is sent 0755; the host file stays as it is
    const { result, script } = await runHostScript(vm, join(dir, 'job.sh'), ['arg']);
    expect(script.argv).toEqual(['/golem/input/job.sh', 'arg']);
    expect(result, result.stderr).toMatchObject({ exitCode: 0, stdout: 'ran as /golem/input/job.sh with arg\n' });
    await writeFile(join(dir, 'data.txt'), 'x');
    await chmod(join(dir, 'data.txt'), 0o640);
    await vm.upload(join(dir, 'data.txt'), '/golem/input/data.txt');
    expect((await vm.exec('stat -c %a /golem/input/job.sh /golem/input/data.txt')).stdout).toBe('755\n640\n');
  });

  it('serveVm serves any VmLike: a connection to a served VM passed on; exec.timeout through both', async () => {
    const upstream = await connectVm(url);
    const relay = await serveVm(upstream);
    try {
      await using vm = await connectVm(relay.url);
      expect(await vm.exec('echo relayed; exit 4')).toMatchObject({ stdout: 'relayed\n', exitCode: 4 });
      await expect(vm.exec('sleep 30', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'exec.timeout', details: { result: { timedOut: true, signal: 'SIGKILL' } } });
      await expect(vm.spawn('true', { pty: { rows: 24, cols: 80 } })).rejects.toMatchObject({ code: 'usage' });
    } finally {
      await relay.close();
      await upstream.disconnect();
    }
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
    ws!.send(JSON.stringify({ op: 'exec', id: '2', command: ['/bin/echo', 'still here'] }));
    expect(await next()).toMatchObject({ event: 'started', id: '2' });
    expect(await next()).toMatchObject({ event: 'stdout', id: '2', data: Buffer.from('still here\n').toString('base64') });
    ws!.close();
  });

  it('a killed client loses its processes, not the VM', async () => {
    const script = `
      import { connectVm } from ${JSON.stringify(resolve('dist/index.js'))};
      const vm = await connectVm(process.env.GVMI_TEST_CONNECT);
      await vm.spawn(['/bin/sleep', '4321']);
      console.log('spawned');
      setInterval(() => {}, 1000);`;
    const client = execa('node', ['--input-type=module', '-e', script], { reject: false, env: { GVMI_TEST_CONNECT: url } });
    await new Promise<void>((r) => client.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('spawned')) r(); }));
    await using observer = await connectVm(url);
    expect((await observer.exec('ps -o args | grep -c "^/bin/sleep 4321" || true')).stdout.trim()).toBe('1');
    client.kill('SIGKILL');
    await client;
    let left = '1';
    for (let i = 0; i < 50 && left !== '0'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = (await observer.exec('ps -o args | grep -c "^/bin/sleep 4321" || true')).stdout.trim();
    }
    expect(left).toBe('0');
    expect(await observer.exec('echo vm alive')).toHaveStdout('vm alive');
  });

  it('exec streams output and exits with the guest status; the URL comes from the environment, never argv', async () => {
    const token = new URL(url).searchParams.get('token')!;
    const child = execa('node', [cli, 'exec', '--', '/bin/sh', '-c', 'echo out; echo err >&2; sleep 1; exit 7'], { reject: false, env: { GVMI_TEST_CONNECT: url } });
    // what `ps` shows every local user while it runs (read once it has connected and runs)
    const running = await Promise.race([new Promise<boolean>((r) => child.stdout!.once('data', () => r(true))), child.then(() => false)]);
    expect(running).toBe(true);
    const cmdline = await readFile(`/proc/${child.pid}/cmdline`, 'utf8');
    expect(cmdline).toContain('exec');
    expect(cmdline).not.toContain(token);
    const r = await child;
    expect(r.stdout).toBe('out');
    expect(r.stderr).toBe('err');
    expect(r.exitCode).toBe(7);
  });

  it('exec refuses a URL with its token in argv (exit 2, the safe ways named, the token not echoed)', async () => {
    const token = new URL(url).searchParams.get('token')!;
    const r = await execa('node', [cli, 'exec', '--connect', url, '--', '/bin/true'], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('[usage]');
    expect(r.stderr).toContain('visible to every local user');
    expect(r.stderr).toMatch(/GVMI_TEST_CONNECT.*--connect -.*--connect-file/);
    expect(r.stderr).not.toContain(token);
  });

  it('exec takes the URL from stdin (--connect -) and from a 0600 file (--connect-file), not from a 0644 one', async () => {
    const fromStdin = await execa('node', [cli, 'exec', '--connect', '-', '--', '/bin/echo', 'via stdin'], { reject: false, input: `${url}\n` });
    expect(fromStdin.stdout).toBe('via stdin');
    expect(fromStdin.exitCode).toBe(0);

    const file = join(dir, 'url');
    await writeFile(file, `${url}\n`, { mode: 0o600 });
    const fromFile = await execa('node', [cli, 'exec', '--connect-file', file, '--', '/bin/echo', 'via file'], { reject: false });
    expect(fromFile.stdout).toBe('via file');

    await chmod(file, 0o644);
    const open644 = await execa('node', [cli, 'exec', '--connect-file', file, '--', '/bin/echo', 'must not run'], { reject: false });
    expect(open644.exitCode).toBe(2);
    expect(open644.stdout).toBe('');
    expect(open644.stderr).toContain('[usage]');
    expect(open644.stderr).toContain(`chmod 600 ${file}`);
  });

  it('streams a 600 MiB sparse download: the server holds a few MiB of it, every byte arrives', { timeout: 300_000 }, async () => {
    const size = 600 * 1024 * 1024;
    const markerAt = 400 * 1024 * 1024 + 123;
    await using vm = await connectVm(url);
    expect(await vm.exec(`truncate -s ${size} /golem/output/sparse && printf GVMI-MARKER | dd of=/golem/output/sparse bs=1 seek=${markerAt} conv=notrunc 2>/dev/null`)).toSucceed();
    const target = join(dir, 'sparse');
    expect(await vm.download('/golem/output/sparse', target)).toEqual({ files: 1, symlinks: 0, skipped: [], size });
    // VmHWM: the most memory the serving process ever held, boot included
    const status = await readFile(`/proc/${server.pid}/status`, 'utf8');
    const peakBytes = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
    expect(peakBytes).toBeLessThan(size / 2);
    expect((await stat(target)).size).toBe(size);
    const handle = await open(target, 'r');
    try {
      const around = Buffer.alloc(13);
      await handle.read(around, 0, 13, markerAt - 1);
      expect(around.toString('latin1')).toBe('\0GVMI-MARKER\0');
    } finally {
      await handle.close();
    }
    await vm.exec('rm /golem/output/sparse');
  });
});

describe('a server with a small transfer cap and a URL file', () => {
  let own: ResultPromise;
  let urlFile: string;
  let ownUrl: string;

  beforeAll(async () => {
    urlFile = join(dir, 'own.url');
    own = execa('node', [cli, 'serve', inject('tinyImage'), '--url-file', urlFile, '--max-transfer-mib', '1'], { reject: false });
    let err = '';
    await new Promise<void>((resolvePromise, reject) => {
      own.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('gvmi-test: serving')) resolvePromise();
      });
      void own.then((r) => reject(new Error(`serve exited: ${r.stderr}`)));
    });
    ownUrl = (await readFile(urlFile, 'utf8')).trim();
  }, 120_000);

  afterAll(async () => {
    own.kill('SIGINT');
    await own;
  });

  it('writes the URL to a 0600 file only (not to stdout), which exec --connect-file reads', async () => {
    expect((await stat(urlFile)).mode & 0o777).toBe(0o600);
    expect(ownUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{32}$/);
    const r = await execa('node', [cli, 'exec', '--connect-file', urlFile, '--', '/bin/echo', 'hi'], { reject: false });
    expect(r.stdout).toBe('hi');
  });

  it('refuses a download over the cap with transfer.too-large before sending any of it', async () => {
    await using vm = await connectVm(ownUrl);
    expect(await vm.exec('head -c 2097152 /dev/zero > /golem/output/big')).toSucceed();
    const { ws } = await raw(ownUrl);
    const next = messageQueue(ws!);
    ws!.send(JSON.stringify({ op: 'download', id: 'd', path: '/golem/output/big' }));
    expect(await next()).toMatchObject({ event: 'error', id: 'd', code: 'transfer.too-large' });
    ws!.close();
    await expect(vm.download('/golem/output/big', join(dir, 'big'))).rejects.toMatchObject({ code: 'transfer.too-large' });
    expect(await vm.exec('head -c 1048576 /dev/zero > /golem/output/big')).toSucceed(); // the cap itself is allowed
    expect(await vm.download('/golem/output/big', join(dir, 'big'))).toEqual({ files: 1, symlinks: 0, skipped: [], size: 1048576 });
  });

  it('an upload that goes past the cap is refused and dropped, and the connection stays up', async () => {
    const { ws } = await raw(ownUrl);
    const next = messageQueue(ws!);
    const chunk = Buffer.alloc(512 * 1024, 'u').toString('base64');
    // a client streaming without end: chunk after chunk, far more than the cap
    for (let i = 0; i < 8; i++) ws!.send(JSON.stringify({ op: 'upload', id: 'u', path: '/golem/input/endless', offset: i * 512 * 1024, data: chunk }));
    ws!.send(JSON.stringify({ op: 'upload-end', id: 'u' }));
    ws!.send(JSON.stringify({ op: 'upload', id: 'far', path: '/golem/input/far', offset: 2 ** 50, data: 'eA==' }));
    expect(await next()).toMatchObject({ event: 'error', id: 'u', code: 'transfer.too-large' });
    expect(await next()).toMatchObject({ event: 'error', id: 'far', code: 'transfer.too-large' });
    ws!.send(JSON.stringify({ op: 'exec', id: 'e', command: ['/bin/sh', '-c', 'ls -A /golem/input | wc -l'] }));
    expect(await next()).toMatchObject({ event: 'started', id: 'e' });
    expect(Buffer.from((await next())['data'] as string, 'base64').toString().trim()).toBe('0');
    ws!.close();

    await using vm = await connectVm(ownUrl);
    await writeFile(join(dir, 'three-mib'), Buffer.alloc(3 * 1024 * 1024, 't'));
    await expect(vm.upload(join(dir, 'three-mib'), '/golem/input/three-mib')).rejects.toMatchObject({ code: 'transfer.too-large' });
    expect(await vm.exec('ls -A /golem/input | wc -l')).toHaveStdout('0');
  });

  it('removes the URL file when it stops', async () => {
    own.kill('SIGINT');
    expect((await own).stderr).toContain('gvmi-test: stopped');
    await expect(stat(urlFile)).rejects.toMatchObject({ code: 'ENOENT' });
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
