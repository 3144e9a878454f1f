/**
 * A network served over its control socket (`gvmi-test network start`) and joined from elsewhere
 * (`--network NAME`): the real VpnNetwork and a real Unix socket, in a private XDG_RUNTIME_DIR.
 * No QEMU: joining hands out addresses and switch ports; forwards need the helper QEMU and are
 * covered by test/integration/cli-networks.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectNetwork, listNetworks } from '../../../src/network/network-control-client.js';
import { NetworkControlServer } from '../../../src/network/network-control-server.js';
import { networkSocketsDir } from '../../../src/network/network-sockets-dir.js';
import { startNetwork, type VpnNetwork } from '../../../src/network/vpn-network.js';

describe('a network served over its control socket', () => {
  let runtimeDir: string;
  const saved = process.env['XDG_RUNTIME_DIR'];
  const cleanups: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    runtimeDir = await mkdtemp(join(tmpdir(), 'gvmi-net-control-'));
    process.env['XDG_RUNTIME_DIR'] = runtimeDir;
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    if (saved === undefined) delete process.env['XDG_RUNTIME_DIR'];
    else process.env['XDG_RUNTIME_DIR'] = saved;
    await rm(runtimeDir, { recursive: true, force: true });
  });

  async function serve(ip: string, name: string, events: Parameters<typeof NetworkControlServer.start>[2] = {}): Promise<{ vpn: VpnNetwork; control: NetworkControlServer }> {
    const vpn = await startNetwork({ ip });
    cleanups.push(() => vpn.close());
    const control = await NetworkControlServer.start(vpn, name, events);
    cleanups.push(() => control.close());
    return { vpn, control };
  }

  it('hands out addresses, the switch port and NET_HOST entries to joins from another process; the socket is private', async () => {
    const { vpn, control } = await serve('192.168.7.0/24', 'lab');
    expect(control.socketPath).toBe(join(runtimeDir, 'gvmi-test', 'networks', 'lab.sock'));
    expect((await stat(join(runtimeDir, 'gvmi-test'))).mode & 0o777).toBe(0o700);
    expect((await stat(control.socketPath)).mode & 0o777).toBe(0o600);

    const remote = await connectNetwork('lab');
    expect([remote.ip, remote.requestorIp]).toEqual(['192.168.7.0/24', '192.168.7.1']);
    const server = await remote.addNode({ name: 'server' });
    const client = await remote.addNode({ name: 'client' });
    const fixed = await remote.addNode({ ip: '192.168.7.20' });
    expect([server.ip, client.ip, fixed.ip]).toEqual(['192.168.7.2', '192.168.7.3', '192.168.7.20']);
    expect(client.hosts).toEqual([{ ip: '192.168.7.2', name: 'server' }, { ip: '192.168.7.3', name: 'client' }]);
    expect(client.nic).toMatchObject({ kind: 'udp', id: 'vpn', mac: '90:13:00:00:00:01', remotePort: vpn.switchPort });
    expect(client.join).toMatchObject({ address: '192.168.7.3', mask: '255.255.255.0', gateway: '192.168.7.1', routeAddress: '192.168.7.0' });
    expect(vpn.members()).toEqual([{ ip: '192.168.7.2', name: 'server' }, { ip: '192.168.7.3', name: 'client' }, { ip: '192.168.7.20' }]);
    expect(await listNetworks()).toEqual([expect.objectContaining({ name: 'lab', ip: '192.168.7.0/24', nodes: vpn.members(), forwards: [] })]);
    server.leave();
    client.leave();
    fixed.leave();
  });

  it('an address is given back when its connection closes (the VM stopped, or its process died)', async () => {
    const left: string[] = [];
    const { vpn } = await serve('10.1.0.0/24', 'gives-back', { left: (n) => left.push(n.ip) });
    const remote = await connectNetwork('gives-back');
    const first = await remote.addNode({ name: 'a' });
    expect(first.ip).toBe('10.1.0.2');
    first.leave();
    while (left.length === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(vpn.members()).toEqual([]);
    const again = await remote.addNode({ name: 'b' });
    expect(again.ip).toBe('10.1.0.2');
    again.leave();
  });

  it('refusals keep their codes across the socket: a taken address, a full network (network.exhausted)', async () => {
    // /29: .1 the requestor, .6 libslirp's DNS address, .2-.5 for nodes.
    await serve('10.2.0.0/29', 'small');
    const remote = await connectNetwork('small');
    const nodes = [];
    for (let i = 0; i < 4; i++) nodes.push(await remote.addNode());
    await expect(remote.addNode()).rejects.toMatchObject({ code: 'network.exhausted' });
    await expect(remote.addNode({ ip: '10.2.0.9' })).rejects.toMatchObject({ code: 'deploy.bad-network' });
    for (const node of nodes) node.leave();
  });

  it('a network that is not running is network.not-found; a live name is network.name-taken; a dead one\'s socket is replaced', async () => {
    await expect(connectNetwork('nobody-here')).rejects.toMatchObject({ code: 'network.not-found' });
    await serve('10.3.0.0/24', 'taken');
    const second = await startNetwork({ ip: '10.4.0.0/24' });
    cleanups.push(() => second.close());
    await expect(NetworkControlServer.start(second, 'taken')).rejects.toMatchObject({ code: 'network.name-taken' });
    // A socket nothing listens on, as a killed network process leaves it: replaced.
    const stale = join(networkSocketsDir(), 'stale.sock');
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect((await stat(stale)).isSocket()).toBe(true);
    await expect(connectNetwork('stale')).rejects.toMatchObject({ code: 'network.not-found' });
    const replacing = await NetworkControlServer.start(second, 'stale');
    cleanups.push(() => replacing.close());
    expect((await connectNetwork('stale')).ip).toBe('10.4.0.0/24');
    // Something else at that path is not removed.
    await writeFile(join(networkSocketsDir(), 'file.sock'), '');
    await expect(NetworkControlServer.start(second, 'file')).rejects.toMatchObject({ code: 'setup.unsafe-runtime-dir' });
  });

  it('a node of a network whose process ends is told (onLost); the VM would keep running', async () => {
    const { control } = await serve('10.5.0.0/24', 'ends');
    const lost: string[] = [];
    const remote = await connectNetwork('ends', { onLost: (node) => lost.push(node.ip) });
    const node = await remote.addNode({ name: 'n' });
    await control.close();
    while (lost.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(lost).toEqual([node.ip]);
    node.leave();
  });

  it('refuses a sockets directory another user could change (setup.unsafe-runtime-dir)', async () => {
    const open = join(runtimeDir, 'open');
    await mkdir(open);
    await chmod(open, 0o777);
    process.env['XDG_RUNTIME_DIR'] = open;
    const vpn = await startNetwork({ ip: '10.6.0.0/24' });
    cleanups.push(() => vpn.close());
    await expect(NetworkControlServer.start(vpn, 'x')).rejects.toMatchObject({ code: 'setup.unsafe-runtime-dir' });
    await expect(connectNetwork('x')).rejects.toMatchObject({ code: 'setup.unsafe-runtime-dir' });
  });
});
