/**
 * A UDP port on 127.0.0.1 that was free a moment ago, for a QEMU socket netdev's `localaddr`
 * (the switch must know each NIC's port before its first frame, to pass broadcasts to it).
 * Upstream picks its ports the same way (vmrt.rs SocketPairConf::probe, "FIXME: TOC/TOU"); ports
 * handed out by this process are not handed out again while recent, so parallel VMs of one
 * process never collide.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';

const recent: number[] = [];
const RECENT_KEPT = 256;

export async function freeUdpPort(): Promise<number> {
  for (;;) {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const { port } = socket.address();
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (recent.includes(port)) continue;
    recent.push(port);
    if (recent.length > RECENT_KEPT) recent.shift();
    return port;
  }
}
