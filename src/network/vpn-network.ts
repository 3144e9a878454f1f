/**
 * A requestor's network (golem-js `createNetwork`, reference §9) on this host: a switch that
 * carries the VMs' frames as a provider's exe-units do, each VM's place in the net, and the
 * requestor's own place (the first host address), from where host ports are forwarded into VMs
 * as golem-js `createTcpProxy` reaches them.
 */
import { GvmiTestError } from '../errors.js';
import { providerNicMac, type UdpNic } from '../qemu/qemu-args.js';
import { FrameSwitch } from './frame-switch.js';
import { freeUdpPort } from './free-udp-port.js';
import { HelperQemu } from './helper-qemu.js';
import { freeTcpPort } from './free-tcp-port.js';
import { checkNodeAddress, ipv4ToNumber, nextNodeAddress, numberToIpv4, parseVpnNetwork, type VpnAddressing } from './vpn-addressing.js';
import { NetInterface, type InterfaceJoin } from './vpn-join.js';

export interface StartNetworkOptions {
  /** The network as golem-js writes it (default golem-js's own, 192.168.0.0/24). */
  ip?: string;
}

export interface NodeOptions {
  /** The VM's address (default: the lowest free one from the second host address up). */
  ip?: string;
  /** A name other VMs find it by: NET_HOST puts `ip<TAB>name` in /etc/hosts of the VMs that join after it. */
  name?: string;
}

/** One VM's place in the network: its NIC, and what the runtime tells its guest on joining. */
export interface VpnNode {
  ip: string;
  name?: string;
  nic: UdpNic;
  /** NET_HOST's entries: every named node so far, this one included. */
  hosts: { ip: string; name: string }[];
  join: InterfaceJoin;
  /** Gives the address back and stops switching its frames. */
  leave(): void;
}

export interface Forward {
  /** 127.0.0.1:hostPort reaches ip:port inside the network. */
  hostPort: number;
  ip: string;
  port: number;
}

/**
 * What a VM joins: this process's VpnNetwork, or one served by another gvmi-test process
 * (`gvmi-test network start`, reached through RemoteNetwork in network-control-client.ts).
 */
export interface JoinableNetwork {
  /** The network as golem-js writes it: 192.168.7.0/24 */
  readonly ip: string;
  addNode(options?: NodeOptions): Promise<VpnNode>;
  forward(target: { ip: string; port: number; hostPort?: number }): Promise<Forward>;
}

/** golem-js's default network (NetworkModule `ip` default). */
export const DEFAULT_VPN_NETWORK = '192.168.0.0/24';

export class VpnNetwork implements JoinableNetwork {
  private readonly taken = new Set<string>();
  private readonly named: { ip: string; name: string }[] = [];
  private readonly nodes = new Map<string, { ip: string; name?: string }>();
  private readonly forwards = new Map<number, Forward>();
  private gateway: Promise<HelperQemu> | undefined;
  private closed = false;
  /** libslirp's DNS address, which it answers ARP for: kept from the nodes (the net's last host). */
  readonly reservedAddress: string;

  private constructor(readonly addressing: VpnAddressing, private readonly fabric: FrameSwitch) {
    const network = ipv4ToNumber(addressing.address)!;
    this.reservedAddress = numberToIpv4(network + 2 ** (32 - addressing.prefix) - 2);
    this.taken.add(this.reservedAddress);
  }

  static async start(options: StartNetworkOptions = {}): Promise<VpnNetwork> {
    const addressing = parseVpnNetwork(options.ip ?? DEFAULT_VPN_NETWORK);
    return new VpnNetwork(addressing, await FrameSwitch.start());
  }

  /** The network as golem-js writes it: 192.168.7.0/24 */
  get ip(): string {
    return this.addressing.cidr;
  }

  /** The requestor's address, the gateway of every node's route: forwarded connections come from it. */
  get requestorIp(): string {
    return this.addressing.gateway;
  }

  /** The UDP port on 127.0.0.1 where the switch takes frames. */
  get switchPort(): number {
    return this.fabric.port;
  }

  private assertOpen(): void {
    if (this.closed) throw new GvmiTestError('usage', `the network ${this.ip} is closed`);
  }

  /** A place for one VM: an address, a NIC (the provider's first: VPN, eth0) on the switch. */
  async addNode(options: NodeOptions = {}): Promise<VpnNode> {
    this.assertOpen();
    const ip = options.ip === undefined ? nextNodeAddress(this.addressing, this.taken) : checkNodeAddress(this.addressing, options.ip);
    if (this.taken.has(ip)) {
      throw new GvmiTestError('deploy.bad-network', ip === this.reservedAddress
        ? `${ip} is kept for the network's own DNS address (libslirp answers for it)`
        : `${ip} is already taken in the network ${this.ip}`);
    }
    if (options.name !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(options.name)) {
      throw new GvmiTestError('deploy.bad-network', `${JSON.stringify(options.name)} is not a host name`, { hint: 'letters, digits, dots and dashes, at most 63' });
    }
    this.taken.add(ip);
    const localPort = await freeUdpPort();
    this.fabric.attach(localPort);
    if (options.name !== undefined) this.named.push({ ip, name: options.name });
    this.nodes.set(ip, { ip, ...(options.name !== undefined ? { name: options.name } : {}) });
    let left = false;
    return {
      ip,
      ...(options.name !== undefined ? { name: options.name } : {}),
      nic: { kind: 'udp', id: 'vpn', mac: providerNicMac(1), localPort, remotePort: this.fabric.port },
      hosts: [...this.named],
      join: {
        iface: NetInterface.VPN, address: ip, mask: this.addressing.mask, gateway: this.addressing.gateway,
        routeAddress: this.addressing.address, routeMask: this.addressing.mask,
      },
      leave: () => {
        if (left) return;
        left = true;
        this.taken.delete(ip);
        this.nodes.delete(ip);
        this.fabric.detach(localPort);
        const at = this.named.findIndex((n) => n.ip === ip);
        if (at >= 0) this.named.splice(at, 1);
      },
    };
  }

  /**
   * Forwards 127.0.0.1:hostPort (a free port when not given) to ip:port in the network, through
   * libslirp at the requestor's address: the VM sees connections from the requestor's address,
   * as from golem-js `createTcpProxy`.
   */
  async forward(target: { ip: string; port: number; hostPort?: number }): Promise<Forward> {
    this.assertOpen();
    const ip = checkNodeAddress(this.addressing, target.ip);
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
      throw new GvmiTestError('deploy.bad-network', `${target.port} is not a TCP port`);
    }
    this.gateway ??= this.startGateway();
    const gateway = await this.gateway;
    const hostPort = target.hostPort ?? await freeTcpPort();
    await gateway.addForward(hostPort, ip, target.port);
    const forward = { hostPort, ip, port: target.port };
    this.forwards.set(hostPort, forward);
    return forward;
  }

  /** Ends a forward made by forward() (connections already open stay until they close). */
  async removeForward(hostPort: number): Promise<void> {
    if (!this.forwards.delete(hostPort)) return;
    const gateway = await this.gateway?.catch(() => undefined);
    await gateway?.removeForward(hostPort);
  }

  /** The nodes joined now, in the order they joined. */
  members(): { ip: string; name?: string }[] {
    return [...this.nodes.values()];
  }

  /** The host ports forwarded now. */
  activeForwards(): Forward[] {
    return [...this.forwards.values()];
  }

  private async startGateway(): Promise<HelperQemu> {
    const localPort = await freeUdpPort();
    this.fabric.attach(localPort);
    return HelperQemu.start({
      role: `requestor's place ${this.requestorIp} in ${this.ip}`,
      net: this.addressing.cidr, host: this.addressing.gateway, dns: this.reservedAddress,
      restrict: true, remotePort: this.fabric.port, localPort,
    }).catch((error: unknown) => {
      this.gateway = undefined;
      throw error;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const gateway = await this.gateway?.catch(() => undefined);
    await gateway?.close();
    await this.fabric.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export function startNetwork(options: StartNetworkOptions = {}): Promise<VpnNetwork> {
  return VpnNetwork.start(options);
}
