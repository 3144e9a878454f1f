/**
 * Networks through the library: startNetwork + startVm({ network }) as golem-js lays a VPN out,
 * the vitest cluster helper, a host port forwarded into a VM, and outbound access under a
 * manifest whitelist, on booted VMs. Servers are on this host's loopback only.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startNetwork, startVm, type OutboundRefusal, type StartedVm } from '../../src/index.js';
import { describeWithCluster } from '../../src/vitest/index.js';

const BOOT_MS = 180_000;

describe('without a requestor network', () => {
  let vm04: StartedVm;
  let vm05: StartedVm;
  beforeAll(async () => {
    [vm04, vm05] = await Promise.all([
      startVm({ image: inject('tinyImage') }),
      startVm({ image: inject('tinyImage'), runtimeVersion: '0.5' }),
    ]);
  }, BOOT_MS);
  afterAll(async () => {
    await Promise.all([vm04?.stop(), vm05?.stop()]);
  });

  it('0.5: eth0 (the VPN NIC every VM gets) is there, down, unaddressed, MTU 1220; 0.4: lo only', async () => {
    expect((await vm05.exec('ls /sys/class/net; cat /sys/class/net/eth0/mtu /sys/class/net/eth0/address')).stdout).toBe('eth0\nlo\n1220\n90:13:00:00:00:01\n');
    expect(Number((await vm05.exec('cat /sys/class/net/eth0/flags')).stdout.trim()) & 1).toBe(0);
    expect((await vm05.exec('ip -4 addr show eth0 | grep -c inet')).stdout).toBe('0\n');
    expect((await vm04.exec('ls /sys/class/net')).stdout).toBe('lo\n');
    expect(vm05.info.network).toBeUndefined();
  });
});

describeWithCluster('two VMs on a requestor network (describeWithCluster)', {
  ip: '192.168.7.0/24',
  nodes: { server: { image: inject('tinyImage'), runtimeVersion: '0.5' }, client: { image: inject('tinyImage'), runtimeVersion: '0.5' } },
  testTimeoutMs: 30_000,
}, (cluster) => {
  it('each VM has the provider\'s addressing: eth0 up with its address, MAC 90:13:<address>, a route via the first host', async () => {
    expect([cluster.ip('server'), cluster.ip('client')]).toEqual(['192.168.7.2', '192.168.7.3']);
    const r = await cluster.vm('client').exec('cat /sys/class/net/eth0/address; ip -4 addr show eth0 | grep inet; grep "^eth0" /proc/net/route | cut -f2,3,4,7,8');
    const [mac, inet, ...routes] = r.stdout.trim().split('\n');
    expect(mac).toBe('90:13:c0:a8:07:03');
    expect(inet!.trim()).toMatch(/^inet 192\.168\.7\.3\/24 /);
    expect(routes).toContain('0007A8C0\t0107A8C0\t0003\t100\t00FFFFFF');
    // The client joined after the server: its /etc/hosts names both, the server's only itself.
    expect((await cluster.vm('client').exec('tail -n 2 /etc/hosts')).stdout).toBe('192.168.7.2\tserver\n192.168.7.3\tclient\n');
    expect((await cluster.vm('server').exec('tail -n 1 /etc/hosts')).stdout).toBe('192.168.7.2\tserver\n');
  });

  it('the client reaches a service on the server by its name (busybox httpd)', async () => {
    await cluster.vm('server').exec('mkdir -p /tmp/www && echo served-by-server > /tmp/www/index.html && httpd -p 8000 -h /tmp/www');
    const r = await cluster.vm('client').exec('wget -q -O - http://server:8000/');
    expect(r).toMatchObject({ exitCode: 0, stdout: 'served-by-server\n' });
  });

  it('a host port forwarded to the server reaches the same service (createTcpProxy)', async () => {
    const forward = await cluster.network().forward({ ip: cluster.ip('server'), port: 8000 });
    const socket = connect(forward.hostPort, '127.0.0.1');
    socket.setEncoding('utf8');
    let reply = '';
    socket.on('data', (d: string) => { reply += d; });
    const closed = once(socket, 'close');
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.0\r\n\r\n');
    await closed;
    expect(reply).toMatch(/^HTTP\/1\.[01] 200/);
    expect(reply).toContain('served-by-server\n');
  });
});

describe('a network refuses what it cannot give', () => {
  it('an address outside the network, or taken, is deploy.bad-network before anything boots', async () => {
    const network = await startNetwork({ ip: '10.9.0.0/24' });
    try {
      await expect(startVm({ image: inject('tinyImage'), network, ip: '10.9.1.5' })).rejects.toMatchObject({ code: 'deploy.bad-network' });
      await expect(startVm({ image: inject('tinyImage'), network, ip: '10.9.0.1' })).rejects.toMatchObject({ code: 'deploy.bad-network' });
      await expect(startNetwork({ ip: '10.9.0.0/40' })).rejects.toMatchObject({ code: 'deploy.bad-network' });
    } finally {
      await network.close();
    }
  });
});

describe('outbound access under a manifest (startVm({ outbound }))', () => {
  let dir: string;
  let vm: StartedVm;
  let allowed: Server;
  let other: Server;
  const otherHits: string[] = [];
  const live: OutboundRefusal[] = [];
  const port = (s: Server): number => (s.address() as { port: number }).port;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gvmi-manifest-'));
    allowed = createServer((_req, res) => res.end('through-the-whitelist\n'));
    other = createServer((req, res) => { otherHits.push(req.url ?? ''); res.end('no\n'); });
    for (const s of [allowed, other]) {
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
    }
    const manifest = { version: '0.1.0', compManifest: { version: '0.1.0', net: { inet: { out: { protocols: ['http'], urls: [`http://localhost:${port(allowed)}`] } } } } };
    // As a demand carries it: base64 of the JSON.
    await writeFile(join(dir, 'manifest.b64'), Buffer.from(JSON.stringify(manifest)).toString('base64'));
    vm = await startVm({ image: inject('tinyImage'), runtimeVersion: '0.5', outbound: { manifest: join(dir, 'manifest.b64') } });
    vm.onOutboundRefused((r) => live.push(r));
  }, BOOT_MS);

  afterAll(async () => {
    await vm?.stop();
    allowed?.close();
    other?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('eth1 is 10.42.42.2/24 with a default route via 10.42.42.1; eth0 stays down', async () => {
    const r = await vm.exec('ip -4 addr show eth1 | grep inet; grep -E "^eth1\\s+00000000" /proc/net/route | cut -f3; cat /sys/class/net/eth1/mtu');
    const [inet, gateway, mtu] = r.stdout.trim().split('\n');
    expect(inet!.trim()).toMatch(/^inet 10\.42\.42\.2\/24 /);
    expect([gateway, mtu]).toEqual(['012A2A0A', '65521']);
    expect(vm.info.outbound).toBe(true);
  });

  it('the whitelisted URL is reached (localhost is this host\'s 127.0.0.1, at 10.42.42.1 in the guest); another port is refused and explained', async () => {
    expect(await vm.exec(`wget -q -O - http://10.42.42.1:${port(allowed)}/`)).toMatchObject({ exitCode: 0, stdout: 'through-the-whitelist\n' });
    const refused = await vm.exec(`printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 10.42.42.1 ${port(other)}; echo "exit $?"`);
    expect(refused.stdout).toMatch(/^exit [1-9]/m);
    expect(otherHits).toEqual([]);
    const expected = expect.objectContaining({ protocol: 'tcp', port: port(other), neededUrl: `http://127.0.0.1:${port(other)}` });
    expect(vm.outboundRefusals()).toEqual([expected]);
    expect(live).toEqual([expected]);
  });
});
