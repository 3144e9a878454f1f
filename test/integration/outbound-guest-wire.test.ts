/**
 * Outbound access under a manifest's whitelist, on a booted VM joined as upstream's host joins
 * the outbound interface (lib.rs join_network with NetworkInterface::Inet: the address, then a
 * route with empty ADDR and MASK: the default route). Servers are on this host's loopback only;
 * the guest reaches this host's 127.0.0.1 at 10.42.42.1 (libslirp's host address).
 */
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { OutboundAccess } from '../../src/network/outbound-access.js';
import { providerNicMac } from '../../src/qemu/qemu-args.js';
import { GolemHost, type RemoteResult, type RunProcessArgs } from '../helpers/golem-host.js';
import { startProviderVm, type ProviderVm } from '../helpers/provider-vm.js';
import { TINY_IMAGE_SETTINGS } from '../helpers/busybox-rootfs.js';

const WAIT_MS = 60_000;
const INET = 1;
const REQUESTOR_FDS = [undefined, { kind: 'pipeCyclic', size: 4096n }, { kind: 'pipeCyclic', size: 4096n }] as const satisfies RunProcessArgs['fds'];

function valueOf<T>(r: RemoteResult<T>, what: string): T {
  if (!r.ok) throw new Error(`${what}: ERR ${r.code}`);
  return r.value;
}

async function httpServer(body: string, hits: string[]): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

describe('outbound access with a manifest whitelist (runtime 0.5)', () => {
  let dir: string;
  let access: OutboundAccess;
  let vm: ProviderVm;
  let host: GolemHost;
  const allowedHits: string[] = [];
  const refusedHits: string[] = [];
  let allowed: { server: Server; port: number };
  let refused: { server: Server; port: number };

  async function sh(script: string): Promise<{ status: number; stdout: string }> {
    const id = valueOf(await host.runProcess({
      bin: '/bin/sh', argv: ['/bin/sh', '-c', script], env: TINY_IMAGE_SETTINGS.env, uid: 0, gid: 0, fds: REQUESTOR_FDS, cwd: '/',
    }), script);
    const died = await host.waitDied(id, WAIT_MS);
    await host.waitFor(() => host.idle, WAIT_MS, 'the output queries');
    return { status: died.status, stdout: host.output(id, 1).toString('utf8') };
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gvmi-outbound-'));
    allowed = await httpServer('allowed-server-body\n', allowedHits);
    refused = await httpServer('must-not-be-reached\n', refusedHits);
    // A computation manifest as golem's schema has it.
    const manifest = {
      version: '0.1.0', createdAt: '2024-01-01T00:00:00Z', expiresAt: '2100-01-01T00:00:00Z',
      metadata: { name: 'outbound test', version: '1.0.0' },
      payload: [{ platform: { arch: 'x86_64', os: 'linux' }, hash: 'sha3:0', urls: [] }],
      compManifest: { version: '0.1.0', net: { inet: { out: { protocols: ['http'], urls: [`http://127.0.0.1:${allowed.port}/`] } } } },
    };
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    access = await OutboundAccess.start({ manifest: join(dir, 'manifest.json') });
    vm = await startProviderVm({
      image: inject('tinyImage'), runtime: '0.5',
      // 0.5 always attaches the VPN NIC (eth0); the outbound one comes second (eth1).
      nics: [{ kind: 'detached', id: 'vpn', mac: providerNicMac(1) }, access.nic],
    });
    host = await GolemHost.connect(vm.agentSocket, { timeoutSec: 60, replyTimeoutMs: WAIT_MS });
    const { join: j } = access;
    expect(await host.addHosts([])).toEqual({ ok: true, value: undefined });
    expect(await host.addAddress(j.address, j.mask, j.iface)).toEqual({ ok: true, value: undefined });
    expect(await host.createNetwork(j.routeAddress, j.routeMask, j.gateway, INET)).toEqual({ ok: true, value: undefined });
  }, 180_000);

  afterAll(async () => {
    await host?.close().catch(() => {});
    await vm?.dispose();
    await access?.close();
    allowed?.server.close();
    refused?.server.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('eth1 as on a provider: 10.42.42.2/24, MAC 90:13:0a:2a:2a:02, MTU 65521, default route via 10.42.42.1', async () => {
    const r = await sh('cat /sys/class/net/eth1/address /sys/class/net/eth1/mtu; ip -4 addr show eth1 | grep inet; grep "^eth1" /proc/net/route');
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 2)).toEqual(['90:13:0a:2a:2a:02', '65521']);
    expect(lines[2]!.trim()).toMatch(/^inet 10\.42\.42\.2\/24 /);
    const routes = lines.slice(3).filter(Boolean).map((l) => l.split('\t').map((f) => f.trim()));
    // Destination 0, gateway 10.42.42.1 (012A2A0A), UP|GATEWAY, metric 0, mask 0.
    expect(routes.map((x) => [x[1], x[2], x[3], x[6], x[7]])).toContainEqual(['00000000', '012A2A0A', '0003', '0', '00000000']);
  });

  it('a whitelisted URL is reached; another port is refused, nothing reaches its server, and the refusal names the URL it would need', async () => {
    const ok = await sh(`wget -q -O - http://10.42.42.1:${allowed.port}/hello`);
    expect(ok).toEqual({ status: 0, stdout: 'allowed-server-body\n' });
    expect(allowedHits).toEqual(['/hello']);

    // busybox nc: its SYN is dropped, it gives up after 3 s (wget's -T crashes this busybox).
    const no = await sh(`printf 'GET /nope HTTP/1.0\\r\\n\\r\\n' | nc -w 3 10.42.42.1 ${refused.port}; echo "exit $?"`);
    expect(no.stdout).not.toContain('must-not-be-reached');
    expect(no.stdout).toMatch(/exit [1-9]/);
    expect(refusedHits).toEqual([]);
    expect(access.refusals).toEqual([expect.objectContaining({
      protocol: 'tcp', ip: '10.42.42.1', port: refused.port, neededUrl: `http://127.0.0.1:${refused.port}`,
    })]);
    expect(access.refusals[0]!.message).toContain('not in the manifest\'s whitelist');
  });

  it('UDP other than DNS to the resolvers the guest is given is refused and reported', async () => {
    // DNS asked of 10.42.42.1 (not of a resolver in /etc/resolv.conf): a UDP flow no URL allows.
    const r = await sh('nslookup -timeout=2 example.invalid 10.42.42.1 >/dev/null 2>&1; echo "exit $?"');
    expect(r.stdout).toMatch(/exit [1-9]/);
    expect(access.refusals).toContainEqual(expect.objectContaining({ protocol: 'udp', ip: '10.42.42.1', port: 53 }));
    const consoleText = await readFile(vm.consoleLog, 'utf8');
    expect(consoleText).not.toContain('GVMI-AGENT-STOP');
  });
});
