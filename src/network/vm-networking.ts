/**
 * A VM's network devices and joins, per runtime profile, as a provider's runtime gives them
 * (reference §9, vmrt.rs): 0.5 always attaches the VPN NIC (yagna passes a VPN endpoint to every
 * VM), down until a requestor network is joined, and the outbound NIC when the manifest asks for
 * outbound access; 0.4 attaches both NICs when either is asked for, and none otherwise (its taps
 * `vpn0`/`inet0` are not reproduced). After start and before the first command the runtime sends,
 * per joined interface, NET_HOST then the two NET_CTLs (lib.rs join_network), VPN first.
 */
import type { AgentClient } from '../agent/agent-client.js';
import { providerNicMac, type NicDevice } from '../qemu/qemu-args.js';
import type { RuntimeProfile } from '../runtime-profile.js';
import { OutboundAccess, type OutboundOptions } from './outbound-access.js';
import type { Refusal } from './outbound-filter.js';
import { joinInterface, sendHosts } from './vpn-join.js';
import type { JoinableNetwork, VpnNode } from './vpn-network.js';

export interface VmNetworkOptions {
  /** Join this requestor network (startNetwork, or one of another process: connectNetwork). */
  network?: JoinableNetwork;
  /** The VM's address in it (default: the next free one). */
  ip?: string;
  /** The name other VMs that join later find it by (/etc/hosts). */
  name?: string;
  /** Outbound access as a computation manifest grants it. */
  outbound?: OutboundOptions;
}

export interface VmNetworking {
  nics: NicDevice[];
  /** The same devices with ports left out: two VMs of one configuration share a snapshot key. */
  keyNics: NicDevice[];
  /** The VM's address in the requestor network. */
  ip?: string;
  outbound?: OutboundAccess;
  /** Sends what the runtime sends once the VM is up. */
  join(client: AgentClient): Promise<void>;
  close(): Promise<void>;
  refusals(): readonly Refusal[];
}

export async function prepareVmNetworking(runtime: RuntimeProfile, options: VmNetworkOptions): Promise<VmNetworking> {
  const node: VpnNode | undefined = options.network
    ? await options.network.addNode({ ...(options.ip !== undefined ? { ip: options.ip } : {}), ...(options.name !== undefined ? { name: options.name } : {}) })
    : undefined;
  let outbound: OutboundAccess | undefined;
  try {
    outbound = options.outbound ? await OutboundAccess.start(options.outbound) : undefined;
  } catch (error) {
    node?.leave();
    throw error;
  }
  const wantsBoth = runtime === '0.4' ? node !== undefined || outbound !== undefined : true;
  const nics: NicDevice[] = [];
  if (wantsBoth) nics.push(node?.nic ?? { kind: 'detached', id: 'vpn', mac: providerNicMac(1) });
  if (outbound) nics.push(outbound.nic);
  else if (runtime === '0.4' && wantsBoth) nics.push({ kind: 'detached', id: 'inet', mac: providerNicMac(2) });
  return {
    nics,
    keyNics: nics.map((n) => (n.kind === 'udp' ? { ...n, localPort: 0, remotePort: 0 } : n)),
    ...(node ? { ip: node.ip } : {}),
    ...(outbound ? { outbound } : {}),
    async join(client) {
      if (node) {
        await sendHosts(client, node.hosts);
        await joinInterface(client, node.join);
      }
      if (outbound) {
        await sendHosts(client, []);
        await joinInterface(client, outbound.join);
      }
    },
    async close() {
      node?.leave();
      await outbound?.close();
    },
    refusals: () => outbound?.refusals ?? [],
  };
}
