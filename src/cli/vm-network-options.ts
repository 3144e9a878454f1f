/**
 * The network options of the commands that boot a VM (run, serve, shell, start-entrypoint):
 * `--network NAME` joins the network another gvmi-test process serves (`gvmi-test network
 * start`), as `--node-ip` and `--hostname` say; `--forward [HOSTPORT:]PORT` forwards a host port
 * on 127.0.0.1 to this VM's VPN address; `--manifest FILE` gives the VM outbound access under a
 * computation manifest's whitelist, every refusal said on stderr as it happens (a provider only
 * logs it) and kept for the findings and `--json`.
 */
import type { Command } from 'commander';
import { GvmiTestError } from '../errors.js';
import type { Forward } from '../network/vpn-network.js';
import type { StartVmOptions } from '../vm/start-vm.js';
import type { StartedVm } from '../vm/started-vm.js';
import { printable } from '../terminal-safe.js';
import { writeLine, type CliIo } from './io.js';
import { collect } from './options.js';

export interface NetworkFlags {
  network?: string;
  nodeIp?: string;
  hostname?: string;
  forward: string[];
  manifest?: string;
}

export function addNetworkOptions(command: Command): Command {
  return command
    .option('--network <NAME>', 'join the network `gvmi-test network start --name NAME` serves (a requestor VPN: eth0 with the provider\'s addressing)')
    .option('--node-ip <ADDR>', 'with --network: this VM\'s address in it (default: the next free one)')
    .option('--hostname <NAME>', 'with --network: the name VMs that join later find this one by (their /etc/hosts, as NET_HOST gives it)')
    .option('--forward <[HOSTPORT:]PORT>', 'with --network: forward 127.0.0.1:HOSTPORT (default: a free port) to PORT at this VM\'s VPN address, as golem-js createTcpProxy (repeatable)', collect, [])
    .option('--manifest <FILE>', 'outbound access as this computation manifest (JSON, or base64 of it) allows: eth1 10.42.42.2, every connection checked against its whitelist, each refusal said on stderr');
}

/** `--forward [HOSTPORT:]PORT` */
export function parseForward(spec: string): { port: number; hostPort?: number } {
  const port = (text: string): number => {
    const n = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
    if (!(n >= 1 && n <= 65535)) throw new GvmiTestError('usage', `--forward ${JSON.stringify(spec)}: ${JSON.stringify(text)} is not a TCP port`, { hint: '--forward 8000 (a free host port) or --forward 8080:8000' });
    return n;
  };
  const parts = spec.split(':');
  if (parts.length === 1) return { port: port(parts[0]!) };
  if (parts.length === 2) return { hostPort: port(parts[0]!), port: port(parts[1]!) };
  throw new GvmiTestError('usage', `--forward ${JSON.stringify(spec)} must look like [HOSTPORT:]PORT`);
}

/** What the network options gave a VM, for `--json`. */
export interface NetworkRecord {
  network?: { name: string; cidr: string; ip: string; forwards: Forward[] };
  outbound?: { manifest: string };
}

export interface CliNetworking {
  /** startVm's network options. */
  options: Pick<StartVmOptions, 'network' | 'ip' | 'name' | 'outbound'>;
  /** Once the VM runs: the forwards made (each said on stderr), refusals said as they happen. */
  attach(vm: StartedVm): Promise<NetworkRecord>;
}

/** Checked before anything boots: a network that is not running fails at once (network.not-found). */
export async function networkingFromFlags(flags: NetworkFlags, io: CliIo | undefined, { quiet = false, tag = '' } = {}): Promise<CliNetworking> {
  const forwards = flags.forward.map(parseForward);
  if (!flags.network) {
    const needing = [flags.nodeIp && '--node-ip', flags.hostname && '--hostname', forwards.length > 0 && '--forward'].filter(Boolean);
    if (needing.length > 0) {
      throw new GvmiTestError('usage', `${needing.join(', ')} need${needing.length === 1 ? 's' : ''} --network NAME: ${needing.length === 1 ? 'it is' : 'they are'} about this VM's place in a network`, {
        hint: 'start a network in another terminal (gvmi-test network start --ip 192.168.7.0/24), then --network default',
      });
    }
  }
  const say = (line: string): void => {
    if (io) writeLine(io.stderr, `gvmi-test: ${tag}${line}`);
  };
  const { connectNetwork } = flags.network ? await import('../network/network-control-client.js') : { connectNetwork: undefined };
  const network = flags.network && connectNetwork
    ? await connectNetwork(flags.network, {
      onLost: (node) => say(`the network ${printable(flags.network!)} has gone (its process ended): this VM (${node.ip}) keeps running, but its VPN carries nothing any more`),
    })
    : undefined;
  return {
    options: {
      ...(network ? { network } : {}),
      ...(flags.nodeIp !== undefined ? { ip: flags.nodeIp } : {}),
      ...(flags.hostname !== undefined ? { name: flags.hostname } : {}),
      ...(flags.manifest !== undefined ? { outbound: { manifest: flags.manifest } } : {}),
    },
    async attach(vm) {
      if (flags.manifest !== undefined && !quiet) {
        // Said once each (the filter reports a destination once); the message names the URL that would allow it.
        for (const r of vm.outboundRefusals()) say(printable(r.message));
        vm.onOutboundRefused((r) => say(printable(r.message)));
      }
      const record: NetworkRecord = flags.manifest !== undefined ? { outbound: { manifest: flags.manifest } } : {};
      records.set(vm, record);
      if (!network || !vm.info.network) return record;
      const ip = vm.info.network.ip;
      const made: Forward[] = [];
      for (const f of forwards) {
        const forward = await network.forward({ ip, port: f.port, ...(f.hostPort !== undefined ? { hostPort: f.hostPort } : {}) });
        made.push(forward);
        say(`127.0.0.1:${forward.hostPort} → ${forward.ip}:${forward.port}`);
      }
      record.network = { name: network.name, cidr: network.ip, ip, forwards: made };
      return record;
    },
  };
}

const records = new WeakMap<StartedVm, NetworkRecord>();

/** What the network options gave `vm` (started by startVmFromFlags), for `--json`. */
export function networkRecordOf(vm: StartedVm): NetworkRecord {
  return records.get(vm) ?? {};
}
