/**
 * Reading Ethernet frames as a provider's NIC sends them (one frame per UDP datagram, no header
 * of its own): the addresses the switch forwards by, and the IPv4 flow the outbound filter checks.
 */

export const ETHERNET_HEADER_BYTES = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const IP_PROTOCOL_TCP = 6;
export const IP_PROTOCOL_UDP = 17;

export function macToString(mac: Buffer): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function destinationMac(frame: Buffer): string {
  return macToString(frame.subarray(0, 6));
}

export function sourceMac(frame: Buffer): string {
  return macToString(frame.subarray(6, 12));
}

/** Broadcast and multicast (ARP, IPv6 neighbour discovery) have the group bit set. */
export function isGroupMac(frame: Buffer): boolean {
  return (frame[0]! & 1) === 1;
}

export function etherType(frame: Buffer): number {
  return frame.readUInt16BE(12);
}

/** One IPv4 packet's flow: what a whitelist allows or refuses. */
export interface Ipv4Flow {
  protocol: number;
  source: string;
  destination: string;
  sourcePort: number;
  destinationPort: number;
  /** TCP: the segment opens a connection (SYN without ACK). */
  opens: boolean;
  /** Not the first fragment: no ports to read (the first fragment decided). */
  laterFragment: boolean;
}

function ipv4ToString(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** The IPv4 flow an Ethernet frame carries, or undefined (not IPv4, truncated). */
export function ipv4Flow(frame: Buffer): Ipv4Flow | undefined {
  if (frame.length < ETHERNET_HEADER_BYTES + 20 || etherType(frame) !== ETHERTYPE_IPV4) return undefined;
  const ip = frame.subarray(ETHERNET_HEADER_BYTES);
  if (ip[0]! >> 4 !== 4) return undefined;
  const headerBytes = (ip[0]! & 0x0f) * 4;
  if (headerBytes < 20 || ip.length < headerBytes) return undefined;
  const protocol = ip[9]!;
  const fragmentOffset = ip.readUInt16BE(6) & 0x1fff;
  const flow: Ipv4Flow = {
    protocol,
    source: ipv4ToString(ip.subarray(12, 16)),
    destination: ipv4ToString(ip.subarray(16, 20)),
    sourcePort: 0,
    destinationPort: 0,
    opens: false,
    laterFragment: fragmentOffset !== 0,
  };
  if (flow.laterFragment || (protocol !== IP_PROTOCOL_TCP && protocol !== IP_PROTOCOL_UDP)) return flow;
  const l4 = ip.subarray(headerBytes);
  if (l4.length < (protocol === IP_PROTOCOL_TCP ? 14 : 4)) return undefined;
  flow.sourcePort = l4.readUInt16BE(0);
  flow.destinationPort = l4.readUInt16BE(2);
  if (protocol === IP_PROTOCOL_TCP) {
    const flags = l4[13]!;
    flow.opens = (flags & 0x02) !== 0 && (flags & 0x10) === 0;
  }
  return flow;
}
