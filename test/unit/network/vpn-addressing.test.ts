import { describe, expect, it } from 'vitest';
import { checkNodeAddress, nextNodeAddress, parseVpnNetwork } from '../../../src/network/vpn-addressing.js';

describe('a requestor network\'s addressing', () => {
  it('golem-js\'s form: network address, mask, the first host as gateway', () => {
    expect(parseVpnNetwork('192.168.7.0/24')).toEqual({ address: '192.168.7.0', mask: '255.255.255.0', prefix: 24, gateway: '192.168.7.1', cidr: '192.168.7.0/24' });
    expect(parseVpnNetwork('10.1.2.3/16')).toMatchObject({ address: '10.1.0.0', mask: '255.255.0.0', gateway: '10.1.0.1' });
  });

  it('refuses what is not an IPv4 network, with deploy.bad-network', () => {
    for (const bad of ['192.168.7/24', '192.168.7.0/33', '192.168.7.0/31', '300.1.1.1/24', 'fd00::/64', '192.168.7.0/24/1', '01.2.3.4/8']) {
      expect(() => parseVpnNetwork(bad), bad).toThrow(expect.objectContaining({ code: 'deploy.bad-network' }));
    }
  });

  it('nodes take the second host address and up; the gateway, network and broadcast addresses are refused', () => {
    const net = parseVpnNetwork('192.168.7.0/24');
    expect(nextNodeAddress(net, new Set())).toBe('192.168.7.2');
    expect(nextNodeAddress(net, new Set(['192.168.7.2']))).toBe('192.168.7.3');
    expect(checkNodeAddress(net, '192.168.7.9')).toBe('192.168.7.9');
    for (const bad of ['192.168.7.1', '192.168.7.0', '192.168.7.255', '192.168.8.2', 'x']) {
      expect(() => checkNodeAddress(net, bad), bad).toThrow(expect.objectContaining({ code: 'deploy.bad-network' }));
    }
  });

  it('a full network says so', () => {
    const net = parseVpnNetwork('10.0.0.0/30');
    expect(nextNodeAddress(net, new Set())).toBe('10.0.0.2');
    expect(() => nextNodeAddress(net, new Set(['10.0.0.2']))).toThrow(expect.objectContaining({ code: 'network.exhausted', message: expect.stringMatching(/no free address/) }));
  });
});
