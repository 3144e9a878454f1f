import { describe, expect, it } from 'vitest';
import { nicArgs, providerNicMac } from '../../../src/qemu/qemu-args.js';

describe('a provider\'s NICs on the QEMU command line', () => {
  it('MACs 90:13 and a big-endian counter, as vmrt.rs configure_netdev_endpoint', () => {
    expect(providerNicMac(1)).toBe('90:13:00:00:00:01');
    expect(providerNicMac(2)).toBe('90:13:00:00:00:02');
    expect(providerNicMac(0x01020304)).toBe('90:13:01:02:03:04');
  });

  it('a socket netdev sending one frame per UDP datagram, on a virtio-net-device (microvm), VPN first', () => {
    expect(nicArgs([
      { kind: 'udp', id: 'vpn', mac: '90:13:00:00:00:01', localPort: 4001, remotePort: 5001 },
      { kind: 'detached', id: 'inet', mac: '90:13:00:00:00:02' },
    ])).toEqual([
      '-netdev', 'socket,id=vpn,udp=127.0.0.1:5001,localaddr=127.0.0.1:4001',
      '-device', 'virtio-net-device,netdev=vpn,mac=90:13:00:00:00:01',
      '-netdev', 'hubport,id=inet,hubid=1',
      '-device', 'virtio-net-device,netdev=inet,mac=90:13:00:00:00:02',
    ]);
    expect(nicArgs([])).toEqual([]);
  });
});
