/**
 * The guest's side of a requestor's VPN, driven as upstream's Rust host drives it: two VMs with
 * a provider's NIC each (socket netdev, one Ethernet frame per UDP datagram, MAC 90:13:00:00:00:01
 * at start), frames switched on the host by src/network/frame-switch.ts, and the join sent by
 * test/helpers/golem-host.ts exactly as lib.rs join_network sends it (v0.5.2 lib.rs:457-503):
 * NET_HOST with the deploy's hosts, NET_CTL {ADD, IF_ADDR, MASK, IF}, NET_CTL {ADD, ADDR, MASK,
 * GATEWAY, IF}. What the guest then shows is upstream's init.c handle_net_ctl (1880-2041):
 * eth0 up with the address, MAC 90:13:<address>, MTU 1220, a route to the net via the gateway.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect } from 'node:net';
import { once } from 'node:events';
import { VpnNetwork, type VpnNode } from '../../src/network/vpn-network.js';
import { GolemHost, type RemoteResult, type RunProcessArgs } from '../helpers/golem-host.js';
import { startProviderVm, type ProviderVm } from '../helpers/provider-vm.js';
import { TINY_IMAGE_SETTINGS } from '../helpers/busybox-rootfs.js';

const WAIT_MS = 60_000;
const VPN = 0;
const MINUS_ONE = 4294967295;
const REQUESTOR_FDS = [undefined, { kind: 'pipeCyclic', size: 4096n }, { kind: 'pipeCyclic', size: 4096n }] as const satisfies RunProcessArgs['fds'];

interface Node {
  place: VpnNode;
  vm: ProviderVm;
  host: GolemHost;
  ip: string;
}

function valueOf<T>(r: RemoteResult<T>, what: string): T {
  if (!r.ok) throw new Error(`${what}: ERR ${r.code}`);
  return r.value;
}

/** A shell line run as a requestor runs it; its stdout (collected as the notifications come). */
async function sh(node: Node, script: string): Promise<{ status: number; stdout: string }> {
  const id = valueOf(await node.host.runProcess({
    bin: '/bin/sh', argv: ['/bin/sh', '-c', script], env: TINY_IMAGE_SETTINGS.env, uid: 0, gid: 0,
    fds: REQUESTOR_FDS, cwd: TINY_IMAGE_SETTINGS.workdir,
  }), script);
  // Output comes through the host's notification handler (vmrt.rs: a query per OUTPUT_AVAILABLE).
  const died = await node.host.waitDied(id, WAIT_MS);
  await node.host.waitFor(() => node.host.idle, WAIT_MS, 'the output queries');
  const stdout = node.host.output(id, 1).toString('utf8');
  return { status: died.status, stdout };
}

describe('a requestor VPN joined as upstream\'s host joins it (runtime 0.5)', () => {
  let network: VpnNetwork;
  const nodes: Node[] = [];

  beforeAll(async () => {
    network = await VpnNetwork.start({ ip: '192.168.7.0/24' });
    for (const name of ['node-0', 'node-1']) {
      const place = await network.addNode({ name });
      const vm = await startProviderVm({ image: inject('tinyImage'), runtime: '0.5', nics: [place.nic] });
      nodes.push({ place, vm, ip: place.ip, host: undefined as unknown as GolemHost });
    }
    for (const node of nodes) {
      node.host = await GolemHost.connect(node.vm.agentSocket, { timeoutSec: 60, replyTimeoutMs: WAIT_MS });
    }
  }, 180_000);

  afterAll(async () => {
    for (const node of nodes) {
      await node.host?.close().catch(() => {});
      await node.vm.dispose();
    }
    await network?.close();
  });

  it('before the join: eth0 is there, down and unaddressed, with the MAC QEMU gave it and MTU 1220', async () => {
    const before = await sh(nodes[0]!, 'cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu /sys/class/net/eth0/flags; ls /sys/class/net; ip -4 addr show eth0 | grep -c inet');
    const [mac, mtu, flags, ...rest] = before.stdout.trim().split('\n');
    expect([mac, mtu, rest]).toEqual(['90:13:00:00:00:01', '1220', ['eth0', 'lo', '0']]);
    // IFF_UP (0x1) clear: the interface is down (operstate follows the flags asynchronously).
    expect(Number(flags) & 1).toBe(0);
  });

  it('the join: NET_HOST, then NET_CTL address, then NET_CTL route, each OK; the guest shows the provider\'s addressing', async () => {
    expect(nodes.map((n) => n.ip)).toEqual(['192.168.7.2', '192.168.7.3']);
    const everyone = nodes.map((n) => [n.place.name!, n.ip] as const);
    for (const node of nodes) {
      const { join } = node.place;
      expect([join.mask, join.gateway, join.routeAddress, join.iface]).toEqual(['255.255.255.0', '192.168.7.1', '192.168.7.0', VPN]);
      expect(await node.host.addHosts(everyone)).toEqual({ ok: true, value: undefined });
      expect(await node.host.addAddress(join.address, join.mask, join.iface)).toEqual({ ok: true, value: undefined });
      expect(await node.host.createNetwork(join.routeAddress, join.routeMask, join.gateway, join.iface)).toEqual({ ok: true, value: undefined });
    }
    const a = await sh(nodes[0]!, 'cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu /sys/class/net/eth0/flags; ip -4 addr show eth0 | grep inet; cat /proc/net/route; tail -n 2 /etc/hosts');
    const lines = a.stdout.split('\n');
    expect(lines.slice(0, 2)).toEqual(['90:13:c0:a8:07:02', '1220']);
    expect(Number(lines[2]) & 1, 'IFF_UP').toBe(1);
    expect(lines[3]!.trim()).toMatch(/^inet 192\.168\.7\.2\/24 /);
    // /proc/net/route: the connected /24 (metric 0) and upstream's route via the gateway: flags
    // UP|GATEWAY (0003), metric 101 given to SIOCADDRT, which the kernel stores as 100.
    const routes = lines.filter((l) => l.startsWith('eth0')).map((l) => l.split('\t').map((f) => f.trim()));
    expect(routes.map((r) => [r[1], r[2], r[3], r[6], r[7]])).toEqual(expect.arrayContaining([
      ['0007A8C0', '00000000', '0001', '0', '00FFFFFF'],
      ['0007A8C0', '0107A8C0', '0003', '100', '00FFFFFF'],
    ]));
    expect(a.stdout).toContain('192.168.7.2\tnode-0\n192.168.7.3\tnode-1\n');
  });

  it('the two VMs reach each other over the switch: ping by hosts name, and TCP both ways', async () => {
    const ping = await sh(nodes[0]!, 'ping -c 1 -W 10 node-1 >/dev/null && echo reached');
    expect(ping.stdout).toBe('reached\n');
    // A one-shot TCP server in VM 1 (busybox nc), a client in VM 0 sends a line through it.
    const server = valueOf(await nodes[1]!.host.runProcess({
      bin: '/bin/sh', argv: ['/bin/sh', '-c', 'nc -l -p 7000 > /tmp/got'], env: TINY_IMAGE_SETTINGS.env,
      uid: 0, gid: 0, fds: REQUESTOR_FDS, cwd: '/',
    }), 'nc -l');
    // Connect once nc listens (port 7000 = 0x1B58 in LISTEN state, 0A; busybox listens on IPv6's any).
    const ready = await sh(nodes[1]!, 'until cat /proc/net/tcp /proc/net/tcp6 | grep -qE ":1B58 0+:0000 0A"; do sleep 0.1; done; echo listening');
    expect(ready.stdout).toBe('listening\n');
    const sent = await sh(nodes[0]!, 'echo over-the-vpn | nc -w 5 192.168.7.3 7000');
    expect(sent.status).toBe(0);
    await nodes[1]!.host.waitDied(server, WAIT_MS);
    expect((await sh(nodes[1]!, 'cat /tmp/got')).stdout).toBe('over-the-vpn\n');
  });

  it('a host port reaches a service in a VM, the connection coming from the requestor\'s address (createTcpProxy)', async () => {
    const forward = await network.forward({ ip: nodes[1]!.ip, port: 8080 });
    const server = valueOf(await nodes[1]!.host.runProcess({
      bin: '/bin/sh', argv: ['/bin/sh', '-c', 'echo served-from-the-vm | nc -l -p 8080 > /tmp/from-host'], env: TINY_IMAGE_SETTINGS.env,
      uid: 0, gid: 0, fds: REQUESTOR_FDS, cwd: '/',
    }), 'nc -l 8080');
    const ready = await sh(nodes[1]!, 'until cat /proc/net/tcp /proc/net/tcp6 | grep -qE ":1F90 0+:0000 0A"; do sleep 0.1; done; echo listening');
    expect(ready.stdout).toBe('listening\n');
    const socket = connect(forward.hostPort, '127.0.0.1');
    const closed = once(socket, 'close');
    await once(socket, 'connect');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { received += d; });
    socket.write('sent-from-the-host\n');
    // The VM's greeting has come through: the connection is established end to end.
    while (!received.includes('\n')) await once(socket, 'data');
    // The VM's end of the connection (open, or closing as nc finished) (local port 8080 = 1F90) has the
    // requestor's 192.168.7.1 as peer (C0A80701, little-endian 0107A8C0; IPv4-mapped on a v6 socket).
    const peers = await sh(nodes[1]!, 'cat /proc/net/tcp /proc/net/tcp6 | grep -E ":1F90 [0-9A-F]+:[0-9A-F]{4} " | grep -v " 0A "');
    expect(peers.stdout, 'the VM\'s side of the connection').toMatch(/:1F90 [0-9A-F]*0107A8C0:[0-9A-F]{4} /);
    socket.end();
    await closed;
    await nodes[1]!.host.waitDied(server, WAIT_MS);
    expect(received).toBe('served-from-the-vm\n');
    expect((await sh(nodes[1]!, 'cat /tmp/from-host')).stdout).toBe('sent-from-the-host\n');
  });

  it('NET_CTL for the outbound NIC on a VM without one: the ioctl\'s -1, as upstream', async () => {
    expect(await nodes[0]!.host.addAddress('10.42.42.2', '255.255.255.0', 1)).toEqual({ ok: false, code: MINUS_ONE });
    const console = await readFile(nodes[0]!.vm.consoleLog, 'utf8');
    expect(console).not.toContain('GVMI-AGENT-STOP');
  });
});
