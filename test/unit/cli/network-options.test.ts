/** The network options of the commands that boot a VM, checked before anything boots. */
import { describe, expect, it } from 'vitest';
import { networkingFromFlags, parseForward } from '../../../src/cli/vm-network-options.js';

describe('--forward [HOSTPORT:]PORT', () => {
  it('takes a port, or a host port and a port', () => {
    expect(parseForward('8000')).toEqual({ port: 8000 });
    expect(parseForward('18080:80')).toEqual({ hostPort: 18080, port: 80 });
  });

  it('refuses anything else as usage', () => {
    for (const bad of ['', '0', '65536', 'http', '1:2:3', ':80', '80:', '-1']) {
      expect(() => parseForward(bad), bad).toThrow(expect.objectContaining({ code: 'usage' }));
    }
  });
});

describe('network options without --network', () => {
  it('--forward, --node-ip and --hostname are refused, naming --network', async () => {
    await expect(networkingFromFlags({ forward: ['8000'], hostname: 'server' }, undefined)).rejects.toMatchObject({
      code: 'usage', message: expect.stringMatching(/--hostname, --forward need --network NAME/),
    });
    await expect(networkingFromFlags({ forward: [], nodeIp: '192.168.7.9' }, undefined)).rejects.toMatchObject({ code: 'usage' });
  });

  it('--manifest alone asks for outbound access only', async () => {
    const networking = await networkingFromFlags({ forward: [], manifest: 'm.json' }, undefined);
    expect(networking.options).toEqual({ outbound: { manifest: 'm.json' } });
  });
});
