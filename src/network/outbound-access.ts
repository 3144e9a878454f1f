/**
 * A VM's outbound access as a provider gives it when the manifest asks for it (reference §9):
 * a second NIC (eth1, 10.42.42.2/24, default route via 10.42.42.1), its frames through the
 * whitelist filter to libslirp in a machine-less QEMU (10.42.42.1 stands for this host's
 * 127.0.0.1 there, 10.42.42.3 is its DNS resolver). One per VM: every VM has the same address.
 */
import { providerNicMac, type UdpNic } from '../qemu/qemu-args.js';
import { freeUdpPort } from './free-udp-port.js';
import { HelperQemu } from './helper-qemu.js';
import { readManifest, resolveWhitelist, type OutboundWhitelist } from './outbound-manifest.js';
import { OutboundFilter, type Refusal } from './outbound-filter.js';
import { NetInterface, type InterfaceJoin } from './vpn-join.js';

export const OUTBOUND = { net: '10.42.42.0/24', guest: '10.42.42.2', gateway: '10.42.42.1', dns: '10.42.42.3', mask: '255.255.255.0' } as const;

export interface OutboundOptions {
  /** A computation manifest file (JSON or base64 of JSON), or its whitelist already read. */
  manifest: string | OutboundWhitelist;
}

export class OutboundAccess {
  private constructor(private readonly filter: OutboundFilter, private readonly stack: HelperQemu, readonly nic: UdpNic, readonly refusals: Refusal[]) {}

  static async start(options: OutboundOptions): Promise<OutboundAccess> {
    const whitelist = typeof options.manifest === 'string' ? await readManifest(options.manifest) : options.manifest;
    const allowed = whitelist.unrestricted ? 'any' as const : await resolveWhitelist(whitelist);
    const filter = await OutboundFilter.start(allowed, { host: OUTBOUND.gateway, dns: OUTBOUND.dns });
    const refusals: Refusal[] = [];
    filter.on('refused', (r) => refusals.push(r));
    try {
      const [guestPort, stackPort] = [await freeUdpPort(), await freeUdpPort()];
      filter.connect(guestPort, stackPort);
      const stack = await HelperQemu.start({
        role: 'outbound network (libslirp)', net: OUTBOUND.net, host: OUTBOUND.gateway, dns: OUTBOUND.dns,
        restrict: false, remotePort: filter.port, localPort: stackPort,
      });
      // The second NIC of a provider's VM: the runtime's counter gives it ...:02.
      const nic: UdpNic = { kind: 'udp', id: 'inet', mac: providerNicMac(2), localPort: guestPort, remotePort: filter.port };
      return new OutboundAccess(filter, stack, nic, refusals);
    } catch (error) {
      await filter.close();
      throw error;
    }
  }

  /** Called for each refusal as it happens (those before are in `refusals`). */
  onRefused(listener: (refusal: Refusal) => void): void {
    this.filter.on('refused', listener);
  }

  /** What the runtime sends for the outbound interface: its address, then a default route. */
  get join(): InterfaceJoin {
    return { iface: NetInterface.INET, address: OUTBOUND.guest, mask: OUTBOUND.mask, gateway: OUTBOUND.gateway, routeAddress: '', routeMask: '' };
  }

  async close(): Promise<void> {
    await this.stack.close();
    await this.filter.close();
  }
}
