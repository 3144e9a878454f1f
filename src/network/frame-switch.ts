/**
 * The host's Ethernet switch between the VMs of one network: every VM's NIC (QEMU's socket
 * netdev) sends one frame per UDP datagram to the switch's port on 127.0.0.1, as a provider's
 * does to its exe-unit; the switch passes each frame on by destination MAC, learning where each
 * source MAC lives; broadcast, multicast and not-yet-learned destinations go to every other port.
 * Datagrams from ports never attached are dropped: only the network's own VMs (and its helpers)
 * take part.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { destinationMac, ETHERNET_HEADER_BYTES, isGroupMac, sourceMac } from './ethernet-frame.js';

export class FrameSwitch {
  private readonly attached = new Set<number>();
  private readonly macs = new Map<string, number>();
  private closed = false;

  private constructor(private readonly socket: Socket, readonly port: number) {
    socket.on('message', (frame, from) => this.receive(frame, from.port, from.address));
    // A VM that is gone answers with ICMP port unreachable: Node reports it as an error on the
    // next send; nothing to do but go on.
    socket.on('error', () => {});
  }

  static async start(): Promise<FrameSwitch> {
    const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    return new FrameSwitch(socket, socket.address().port);
  }

  /** A NIC whose QEMU sends from (and receives on) this UDP port of 127.0.0.1. */
  attach(port: number): void {
    this.attached.add(port);
  }

  detach(port: number): void {
    this.attached.delete(port);
    for (const [mac, p] of this.macs) if (p === port) this.macs.delete(mac);
  }

  private receive(frame: Buffer, fromPort: number, fromAddress: string): void {
    if (fromAddress !== '127.0.0.1' || !this.attached.has(fromPort) || frame.length < ETHERNET_HEADER_BYTES) return;
    // A MAC moves when a guest sets its own (NET_CTL): the last port seen wins.
    this.macs.set(sourceMac(frame), fromPort);
    const known = isGroupMac(frame) ? undefined : this.macs.get(destinationMac(frame));
    if (known !== undefined) {
      if (known !== fromPort) this.send(frame, known);
      return;
    }
    for (const port of this.attached) if (port !== fromPort) this.send(frame, port);
  }

  private send(frame: Buffer, port: number): void {
    if (!this.closed) this.socket.send(frame, port, '127.0.0.1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
