/**
 * `describeWithCluster`: several VMs on one requestor network for a block of tests, as a Golem
 * app that runs many nodes over a VPN deploys them (golem-js `createNetwork` + a node per
 * activity). The VMs start one after another in the order given, each joining the network with
 * its name, so each one's /etc/hosts names the nodes before it and itself, as a provider's NET_HOST
 * carries the nodes known when it deploys; they are stopped, and the network closed, after the
 * block.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { startNetwork, type VpnNetwork } from '../network/vpn-network.js';
import { startVm, type StartVmOptions } from '../vm/start-vm.js';
import type { StartedVm } from '../vm/started-vm.js';
import { vmTimeout } from './timeouts.js';

/** One node: startVm's options without the network ones (the cluster gives those). */
export type ClusterNodeOptions = Omit<StartVmOptions, 'network' | 'name'>;

export interface DescribeWithClusterOptions {
  /** The network as golem-js writes it (default 192.168.0.0/24). */
  ip?: string;
  /** Node name -> its VM; the name is its host name in the other nodes' /etc/hosts. */
  nodes: Record<string, ClusterNodeOptions>;
  /** Per-test timeout written for KVM; scaled for TCG (default 10 s). */
  testTimeoutMs?: number;
}

export interface Cluster {
  /** The VM of a node. */
  vm(name: string): StartedVm;
  /** The node's address in the network. */
  ip(name: string): string;
  /** The network: `forward()` reaches a node's port from this host. */
  network(): VpnNetwork;
}

/** Boot of one VM, written for KVM (scaled for TCG), times the nodes. */
const BOOT_PER_NODE_KVM_MS = 20_000;

export function describeWithCluster(name: string, options: DescribeWithClusterOptions, body: (cluster: Cluster) => void): void {
  const names = Object.keys(options.nodes);
  describe(name, { timeout: vmTimeout(options.testTimeoutMs ?? 10_000) }, () => {
    let network: VpnNetwork | undefined;
    const vms = new Map<string, StartedVm>();
    beforeAll(async () => {
      network = await startNetwork(options.ip !== undefined ? { ip: options.ip } : {});
      for (const node of names) vms.set(node, await startVm({ ...options.nodes[node]!, network, name: node }));
    }, vmTimeout(BOOT_PER_NODE_KVM_MS * Math.max(1, names.length)));
    afterAll(async () => {
      await Promise.all([...vms.values()].map((vm) => vm.stop().catch(() => {})));
      await network?.close();
    }, vmTimeout(BOOT_PER_NODE_KVM_MS));
    const get = (node: string): StartedVm => {
      const vm = vms.get(node);
      if (!vm) throw new Error(names.includes(node) ? `node ${node} is not started (use the cluster inside tests or hooks)` : `no node ${node} in this cluster (${names.join(', ')})`);
      return vm;
    };
    body({
      vm: get,
      ip: (node) => get(node).info.network!.ip,
      network: () => {
        if (!network) throw new Error('the network is not started (use the cluster inside tests or hooks)');
        return network;
      },
    });
  });
}
