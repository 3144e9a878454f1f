/**
 * The manifest's whitelist applied to a VM's outbound frames, between its eth1 NIC and the
 * userspace TCP/IP stack (libslirp) that carries allowed flows out through this host's sockets,
 * as a provider's outbound service does (reference §9): every TCP connection (its SYN) and UDP
 * flow (its first datagram) the guest opens is checked against the resolved (protocol, IP, port)
 * tuples; a refused one is dropped and reported with what the manifest would need. DNS to the
 * resolvers the guest is given (1.1.1.1, 8.8.8.8) goes to libslirp's resolver, as a provider
 * redirects it. ARP passes; other IPv4 protocols and IPv6 are not carried (a provider proxies
 * TCP and UDP only).
 */
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { ETHERNET_HEADER_BYTES, etherType, ETHERTYPE_IPV4, IP_PROTOCOL_TCP, IP_PROTOCOL_UDP, ipv4Flow } from './ethernet-frame.js';
import type { AllowedTuple } from './outbound-manifest.js';

const ETHERTYPE_ARP = 0x0806;
const PUBLIC_RESOLVERS = new Set(['1.1.1.1', '8.8.8.8']);
const DNS_PORT = 53;

export interface OutboundAddresses {
  /** libslirp's host address: connections to it reach this host's 127.0.0.1. */
  host: string;
  /** libslirp's DNS address, where DNS to the public resolvers is sent. */
  dns: string;
}

export interface Refusal {
  protocol: 'tcp' | 'udp' | 'other';
  /** The destination the guest asked for. */
  ip: string;
  port: number;
  /** What a manifest URL would have to be to allow it (undefined when no URL can: UDP, ICMP). */
  neededUrl?: string;
  message: string;
}

function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

/** The IPv4 header checksum, recomputed after an address was rewritten. */
function fixIpChecksum(ip: Buffer): void {
  const headerBytes = (ip[0]! & 0x0f) * 4;
  ip.writeUInt16BE(0, 10);
  let sum = 0;
  for (let i = 0; i < headerBytes; i += 2) sum += ip.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  ip.writeUInt16BE(~sum & 0xffff, 10);
}

/** Rewrites a UDP packet's source or destination address; its checksum becomes 0 ("none", valid in IPv4). */
function rewriteUdp(frame: Buffer, field: 'source' | 'destination', ip: string): Buffer {
  const copy = Buffer.from(frame);
  const packet = copy.subarray(ETHERNET_HEADER_BYTES);
  ipv4Bytes(ip).copy(packet, field === 'source' ? 12 : 16);
  fixIpChecksum(packet);
  packet.writeUInt16BE(0, (packet[0]! & 0x0f) * 4 + 6);
  return copy;
}

export class OutboundFilter extends EventEmitter<{ refused: [Refusal] }> {
  private readonly flows = new Set<string>();
  /** Guest UDP source port -> the public resolver it asked, to answer from that address. */
  private readonly dnsAsked = new Map<number, string>();
  private readonly reported = new Set<string>();
  private guestPort = 0;
  private stackPort = 0;
  private closed = false;

  private constructor(private readonly socket: Socket, readonly port: number, private readonly allowed: readonly AllowedTuple[] | 'any', private readonly addresses: OutboundAddresses) {
    super();
    socket.on('message', (frame, from) => {
      if (from.address !== '127.0.0.1') return;
      if (from.port === this.guestPort) this.fromGuest(frame);
      else if (from.port === this.stackPort) this.fromStack(frame);
    });
    socket.on('error', () => {});
  }

  static async start(allowed: readonly AllowedTuple[] | 'any', addresses: OutboundAddresses): Promise<OutboundFilter> {
    const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    return new OutboundFilter(socket, socket.address().port, allowed, addresses);
  }

  /** The guest NIC's and the TCP/IP stack's UDP ports on 127.0.0.1. */
  connect(guestPort: number, stackPort: number): void {
    this.guestPort = guestPort;
    this.stackPort = stackPort;
  }

  /** Where a destination the guest sees is on this host: libslirp's host address is 127.0.0.1. */
  private hostSide(ip: string): string {
    return ip === this.addresses.host ? '127.0.0.1' : ip;
  }

  private allows(ip: string, port: number): boolean {
    if (this.allowed === 'any') return true;
    const host = this.hostSide(ip);
    return this.allowed.some((t) => t.ip === host && t.port === port);
  }

  private fromGuest(frame: Buffer): void {
    if (frame.length < ETHERNET_HEADER_BYTES) return;
    const type = etherType(frame);
    if (type === ETHERTYPE_ARP) return this.toStack(frame);
    if (type !== ETHERTYPE_IPV4) return;
    const flow = ipv4Flow(frame);
    if (!flow || flow.laterFragment) return;
    if (flow.protocol === IP_PROTOCOL_TCP) {
      const key = `tcp ${flow.sourcePort} ${flow.destination}:${flow.destinationPort}`;
      if (flow.opens && !this.flows.has(key)) {
        if (!this.allows(flow.destination, flow.destinationPort)) return this.refuse('tcp', flow.destination, flow.destinationPort);
        this.flows.add(key);
      }
      // Segments of a connection never allowed are dropped (the guest retries its SYN, refused again).
      if (this.flows.has(key)) this.toStack(frame);
      return;
    }
    if (flow.protocol === IP_PROTOCOL_UDP) {
      if (flow.destinationPort === DNS_PORT && PUBLIC_RESOLVERS.has(flow.destination)) {
        this.dnsAsked.set(flow.sourcePort, flow.destination);
        return this.toStack(rewriteUdp(frame, 'destination', this.addresses.dns));
      }
      const key = `udp ${flow.sourcePort} ${flow.destination}:${flow.destinationPort}`;
      if (!this.flows.has(key)) {
        if (this.allowed !== 'any') return this.refuse('udp', flow.destination, flow.destinationPort);
        this.flows.add(key);
      }
      return this.toStack(frame);
    }
    this.refuse('other', flow.destination, 0);
  }

  private fromStack(frame: Buffer): void {
    const flow = etherType(frame) === ETHERTYPE_IPV4 ? ipv4Flow(frame) : undefined;
    if (flow && flow.protocol === IP_PROTOCOL_UDP && flow.source === this.addresses.dns && flow.sourcePort === DNS_PORT) {
      const resolver = this.dnsAsked.get(flow.destinationPort);
      if (resolver) return this.toGuest(rewriteUdp(frame, 'source', resolver));
    }
    this.toGuest(frame);
  }

  private refuse(protocol: Refusal['protocol'], ip: string, port: number): void {
    const key = `${protocol} ${ip}:${port}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    const host = this.hostSide(ip);
    const where = host === ip ? `${ip}:${port}` : `${ip}:${port} (this host's ${host}:${port})`;
    let refusal: Refusal;
    if (protocol === 'tcp') {
      const neededUrl = port === 443 ? `https://${host}` : port === 80 ? `http://${host}` : `http://${host}:${port}`;
      refusal = {
        protocol, ip, port, neededUrl,
        message: `outbound TCP to ${where} refused: not in the manifest's whitelist; a URL such as ${neededUrl} in compManifest.net.inet.out.urls would allow it (on a provider this refusal is only in the provider's log)`,
      };
    } else {
      refusal = {
        protocol, ip, port,
        message: protocol === 'udp'
          ? `outbound UDP to ${where} refused: a whitelist allows URLs (TCP) only, and DNS to the resolvers in /etc/resolv.conf`
          : `outbound IPv4 protocol other than TCP and UDP to ${ip} dropped: a provider's outbound access carries TCP and UDP only`,
      };
    }
    this.emit('refused', refusal);
  }

  private toStack(frame: Buffer): void {
    if (!this.closed && this.stackPort) this.socket.send(frame, this.stackPort, '127.0.0.1');
  }

  private toGuest(frame: Buffer): void {
    if (!this.closed && this.guestPort) this.socket.send(frame, this.guestPort, '127.0.0.1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
