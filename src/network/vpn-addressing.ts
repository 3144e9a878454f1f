/**
 * A requestor network's addressing as golem-js and yagna lay it out (`createNetwork({ ip:
 * '192.168.7.0/24' })`, reference §9): the requestor holds the first host address (.1), which
 * is also the gateway every node's route to the net goes through; nodes get the following
 * addresses in the order they join. IPv4 only, as golem-js.
 */
import { GvmiTestError } from '../errors.js';

export interface VpnAddressing {
  /** The network address, as the route's ADDR: 192.168.7.0 */
  address: string;
  /** Dotted mask, as NET_CTL's MASK: 255.255.255.0 */
  mask: string;
  prefix: number;
  /** The first host address: the requestor's place, and the nodes' gateway. */
  gateway: string;
  /** The CIDR as written back: 192.168.7.0/24 */
  cidr: string;
}

export function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function bad(message: string, hint?: string): GvmiTestError {
  return new GvmiTestError('deploy.bad-network', message, hint ? { hint } : {});
}

/** Parses `192.168.7.0/24` (a host address inside the net is taken as that net, as yagna does). */
export function parseVpnNetwork(cidr: string): VpnAddressing {
  const [ip, prefixText, extra] = cidr.split('/');
  const base = ipv4ToNumber(ip ?? '');
  const prefix = prefixText === undefined ? 24 : /^[0-9]{1,2}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (base === undefined || extra !== undefined || !(prefix >= 0 && prefix <= 30)) {
    throw bad(`${JSON.stringify(cidr)} is not an IPv4 network`, 'write it as golem-js does: 192.168.7.0/24 (a prefix from 0 to 30, room for the requestor and a node)');
  }
  const network = (base & maskOf(prefix)) >>> 0;
  return {
    address: numberToIpv4(network),
    mask: numberToIpv4(maskOf(prefix)),
    prefix,
    gateway: numberToIpv4(network + 1),
    cidr: `${numberToIpv4(network)}/${prefix}`,
  };
}

/** Whether `ip` is a node's address in the net: not the network, broadcast or gateway address. */
export function checkNodeAddress(net: VpnAddressing, ip: string): string {
  const n = ipv4ToNumber(ip);
  const network = ipv4ToNumber(net.address)!;
  const size = 2 ** (32 - net.prefix);
  if (n === undefined || n < network || n >= network + size) {
    throw bad(`${ip} is not an address in the network ${net.cidr}`);
  }
  if (n === network || n === network + size - 1) throw bad(`${ip} is the network's ${n === network ? 'own' : 'broadcast'} address`);
  if (n === network + 1) throw bad(`${ip} is the requestor's address (the gateway) in ${net.cidr}`, `nodes take ${numberToIpv4(network + 2)} and up`);
  return numberToIpv4(n);
}

/** The lowest node address not in `taken`, from the second host address up. */
export function nextNodeAddress(net: VpnAddressing, taken: ReadonlySet<string>): string {
  const network = ipv4ToNumber(net.address)!;
  const size = 2 ** (32 - net.prefix);
  for (let n = network + 2; n < network + size - 1; n++) {
    const ip = numberToIpv4(n);
    if (!taken.has(ip)) return ip;
  }
  throw new GvmiTestError('network.exhausted', `the network ${net.cidr} has no free address left`, { hint: 'use a larger network (a smaller prefix), or stop a VM of it: its address is given back' });
}
