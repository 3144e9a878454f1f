/**
 * Networks from the command line, as from two terminals: `gvmi-test network start` in its own
 * process, a `run` serving with busybox httpd joined to it by name, a second `run` reaching it by
 * that name (and, under a manifest, a loopback server the whitelist allows, and one it refuses,
 * the refusal said on stderr); a host port forwarded by `--forward` and by `network forward`;
 * the network's end said to a VM still joined. The built CLI, real QEMU; servers on this host's
 * loopback only; the control sockets in a private XDG_RUNTIME_DIR.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, get, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const cli = resolve('dist/cli/main.js');
const BOOT_MS = 240_000;

interface Cli {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

let runtimeDir: string;
const started: Cli[] = [];

function startCli(args: string[]): Cli {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolveExit) => child.once('close', (code) => resolveExit(code)));
  const handle = { child, out: () => out, err: () => err, exited };
  started.push(handle);
  return handle;
}

/** Waits until `text()` matches `what`, or fails when the process ends first (bounded by the test's timeout). */
async function waitFor(what: RegExp, text: () => string, cliProcess: Cli): Promise<RegExpMatchArray> {
  let ended = false;
  void cliProcess.exited.then(() => { ended = true; });
  for (;;) {
    const match = text().match(what);
    if (match) return match;
    if (ended) throw new Error(`the CLI exited before ${what}:\nstdout: ${cliProcess.out()}\nstderr: ${cliProcess.err()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function httpGet(port: number): Promise<string> {
  return new Promise((resolveGet, reject) => {
    get({ host: '127.0.0.1', port, path: '/' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolveGet(body));
    }).on('error', reject);
  });
}

const portOf = (s: Server): number => (s.address() as { port: number }).port;

describe('networks from the command line (network start, --network, --forward, --manifest)', () => {
  let network: Cli;
  let server: Cli;
  let allowed: Server;
  let other: Server;
  const otherHits: string[] = [];
  let manifest: string;

  beforeAll(async () => {
    runtimeDir = await mkdtemp(join(tmpdir(), 'gvmi-cli-networks-'));
    allowed = createServer((_req, res) => res.end('allowed-by-the-manifest\n'));
    other = createServer((req, res) => { otherHits.push(req.url ?? ''); res.end('no\n'); });
    for (const s of [allowed, other]) {
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
    }
    manifest = join(runtimeDir, 'manifest.json');
    await writeFile(manifest, JSON.stringify({ version: '0.1.0', compManifest: { version: '0.1.0', net: { inet: { out: { protocols: ['http'], urls: [`http://127.0.0.1:${portOf(allowed)}`] } } } } }));

    network = startCli(['network', 'start', '--ip', '192.168.7.0/24', '--name', 'lab', '--json']);
    const announced = JSON.parse((await waitFor(/^\{.*\}\n/, network.out, network))[0]) as Record<string, unknown>;
    expect(announced).toMatchObject({ name: 'lab', ip: '192.168.7.0/24', requestorIp: '192.168.7.1', socket: join(runtimeDir, 'gvmi-test', 'networks', 'lab.sock') });

    server = startCli(['run', '--runtime-version', '0.5', '--network', 'lab', '--hostname', 'server', '--forward', '8000', inject('tinyImage'), '--',
      '/bin/sh', '-c', 'mkdir -p /tmp/www && echo served-by-server > /tmp/www/index.html && httpd -p 8000 -h /tmp/www && echo listening && exec sleep 3600']);
    // httpd has bound its port before it goes to the background: "listening" means it answers.
    await waitFor(/^listening$/m, server.out, server);
  }, BOOT_MS);

  afterAll(async () => {
    for (const c of started) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGINT');
    await Promise.all(started.map((c) => c.exited));
    allowed?.close();
    other?.close();
    if (runtimeDir) await rm(runtimeDir, { recursive: true, force: true });
  }, BOOT_MS);

  it('a second run joins by name and reaches the server (httpd) by it; under --manifest an allowed loopback server is reached and another refused, on stderr with the URL it needs', async () => {
    const client = startCli(['run', '--runtime-version', '0.5', '--network', 'lab', '--manifest', manifest, inject('tinyImage'), '--',
      '/bin/sh', '-c', `grep server /etc/hosts; wget -q -O - http://server:8000/; wget -q -O - http://10.42.42.1:${portOf(allowed)}/; nc -w 3 10.42.42.1 ${portOf(other)} </dev/null; echo "refused: $?"`]);
    expect(await client.exited, client.err()).toBe(0);
    expect(client.out()).toBe(`192.168.7.2\tserver\nserved-by-server\nallowed-by-the-manifest\nrefused: 1\n`);
    expect(otherHits).toEqual([]);
    const refusals = client.err().split('\n').filter((l) => l.includes('refused: not in the manifest'));
    expect(refusals).toEqual([expect.stringContaining(`a URL such as http://127.0.0.1:${portOf(other)} in compManifest.net.inet.out.urls would allow it`)]);
    // The network saw it join (the next address) and leave (its address given back).
    await waitFor(/192\.168\.7\.3 left; its address is free again/, network.err, network);
    expect(network.err()).toContain('192.168.7.2 (server) joined');
  }, BOOT_MS);

  it('under --runtime-version all, each runtime\'s refusal is said with its runtime, as the rest of its lines', async () => {
    const client = startCli(['run', '--runtime-version', 'all', '--manifest', manifest, inject('tinyImage'), '--',
      '/bin/sh', '-c', `nc -w 3 10.42.42.1 ${portOf(other)} </dev/null; echo "refused: $?"`]);
    expect(await client.exited, client.err()).toBe(0);
    const refusals = client.err().split('\n').filter((l) => l.includes('refused: not in the manifest'));
    expect(refusals).toEqual([expect.stringMatching(/^gvmi-test: \[0\.4\] /), expect.stringMatching(/^gvmi-test: \[0\.5\] /)]);
    expect(otherHits).toEqual([]);
  }, BOOT_MS);

  it('--forward: the host port printed on stderr reaches the server\'s service', async () => {
    const [, hostPort] = await waitFor(/gvmi-test: 127\.0\.0\.1:(\d+) → 192\.168\.7\.2:8000/, server.err, server);
    expect(await httpGet(Number(hostPort))).toBe('served-by-server\n');
  });

  it('network forward NAME IP:PORT: a host port to any node, until Ctrl-C', async () => {
    const forward = startCli(['network', 'forward', 'lab', '192.168.7.2:8000', '--json']);
    const line = JSON.parse((await waitFor(/^\{.*\}\n/, forward.out, forward))[0]) as { hostPort: number; ip: string; port: number };
    expect(line).toMatchObject({ network: 'lab', ip: '192.168.7.2', port: 8000 });
    expect(await httpGet(line.hostPort)).toBe('served-by-server\n');
    forward.child.kill('SIGINT');
    expect(await forward.exited).toBe(0);
    await waitFor(new RegExp(`127\\.0\\.0\\.1:${line.hostPort} → 192\\.168\\.7\\.2:8000 ended`), network.err, network);
    await expect(httpGet(line.hostPort)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('list shows the network, its nodes and forwards; --network to a network not running is network.not-found (75), before anything boots', async () => {
    const list = startCli(['network', 'list', '--json']);
    expect(await list.exited).toBe(0);
    expect(JSON.parse(list.out())).toEqual([expect.objectContaining({ name: 'lab', nodes: [{ ip: '192.168.7.2', name: 'server' }], forwards: [expect.objectContaining({ ip: '192.168.7.2', port: 8000 })] })]);
    const missing = startCli(['run', '--network', 'nowhere', inject('tinyImage'), '--', '/bin/true']);
    expect(await missing.exited).toBe(75);
    expect(missing.err()).toContain('no network named nowhere is running [network.not-found]');
  });

  it('when the network process ends, a joined VM is told it lost its VPN and keeps running', async () => {
    network.child.kill('SIGTERM');
    expect(await network.exited).toBe(0);
    await waitFor(/the network lab has gone \(its process ended\): this VM \(192\.168\.7\.2\) keeps running/, server.err, server);
    expect(server.child.exitCode).toBeNull();
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(130);
  }, BOOT_MS);
});
