/**
 * What ya-runtime-vm sends when a requestor's network is joined, after the VM has started and
 * before the first command (v0.5.2 lib.rs join_network 457-503, guest_agent_comm.rs add_hosts
 * 686-706, add_address 731-750, create_network 708-729), in its order: NET_HOST with the deploy's
 * hosts, then per network NET_CTL {FLAGS=ADD, IF_ADDR, MASK, IF} (the node's address) and NET_CTL
 * {FLAGS=ADD, ADDR, MASK, GATEWAY, IF} (the route to the net via the gateway). For the outbound
 * interface the route's ADDR and MASK are empty: a default route.
 */
import type { AgentClient } from '../agent/agent-client.js';
import type { RequestWriter } from '../agent/codec.js';
import { MsgType, SubNetCtl, SubNetHost } from '../agent/protocol.js';

/** SUB_NET_CTL_IF: which NIC (proto.h; upstream's NetworkInterface enum). */
export const NetInterface = { VPN: 0, INET: 1 } as const;
/** SubMsgNetCtlFlags::Add */
const FLAG_ADD = 1;

export interface InterfaceJoin {
  iface: (typeof NetInterface)[keyof typeof NetInterface];
  /** The node's address and the net's mask. */
  address: string;
  mask: string;
  gateway: string;
  /** The route's destination: the network address (VPN), or empty for a default route (INET). */
  routeAddress: string;
  routeMask: string;
}

/** A u16 field, little-endian as every integer of the protocol. */
function u16(w: RequestWriter, value: number): RequestWriter {
  return w.u8(value & 0xff).u8((value >>> 8) & 0xff);
}

export async function sendHosts(client: AgentClient, hosts: readonly { ip: string; name: string }[]): Promise<void> {
  await client.request(MsgType.NET_HOST, (w) => {
    for (const h of hosts) w.sub(SubNetHost.ENTRY).bytes(h.ip).bytes(h.name);
  }, 'adding the network hosts to /etc/hosts');
}

export async function joinInterface(client: AgentClient, join: InterfaceJoin): Promise<void> {
  await client.request(MsgType.NET_CTL, (w) => {
    u16(w.sub(SubNetCtl.FLAGS), FLAG_ADD);
    w.sub(SubNetCtl.IF_ADDR).bytes(join.address);
    w.sub(SubNetCtl.MASK).bytes(join.mask);
    u16(w.sub(SubNetCtl.IF), join.iface);
  }, `adding interface address ${join.address}`);
  await client.request(MsgType.NET_CTL, (w) => {
    u16(w.sub(SubNetCtl.FLAGS), FLAG_ADD);
    w.sub(SubNetCtl.ADDR).bytes(join.routeAddress);
    w.sub(SubNetCtl.MASK).bytes(join.routeMask);
    w.sub(SubNetCtl.GATEWAY).bytes(join.gateway);
    u16(w.sub(SubNetCtl.IF), join.iface);
  }, `creating a route via ${join.gateway}`);
}
