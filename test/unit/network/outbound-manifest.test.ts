import { describe, expect, it } from 'vitest';
import { parseManifest, resolveWhitelist, urlTarget } from '../../../src/network/outbound-manifest.js';

const manifest = (out: unknown): string => JSON.stringify({ version: '0.1.0', compManifest: { version: '0.1.0', net: { inet: { out } } } });

describe('a computation manifest\'s outbound whitelist', () => {
  it('reads urls and protocols, as JSON or base64 of JSON (as a demand carries it)', () => {
    const text = manifest({ protocols: ['http', 'https'], urls: ['https://pypi.org', 'http://127.0.0.1:8080/x'] });
    const expected = { unrestricted: false, urls: ['https://pypi.org', 'http://127.0.0.1:8080/x'], protocols: ['http', 'https'] };
    expect(parseManifest(text)).toEqual(expected);
    expect(parseManifest(Buffer.from(text).toString('base64'))).toEqual(expected);
    expect(parseManifest(manifest({ unrestricted: { urls: true } })).unrestricted).toBe(true);
  });

  it('refuses a manifest without outbound access, or not a manifest, with deploy.bad-manifest', () => {
    for (const bad of ['{}', 'not json at all', JSON.stringify({ compManifest: { net: {} } }), manifest({ urls: 'https://x' })]) {
      expect(() => parseManifest(bad), bad).toThrow(expect.objectContaining({ code: 'deploy.bad-manifest' }));
    }
  });

  it('each URL gives its port or its scheme\'s (https 443, http 80); a scheme outside protocols is refused', () => {
    expect(urlTarget('https://pypi.org/simple', ['https'])).toEqual({ host: 'pypi.org', port: 443 });
    expect(urlTarget('http://127.0.0.1:8080', ['http'])).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(() => urlTarget('ftp://x.org', ['http', 'https'])).toThrow(expect.objectContaining({ code: 'deploy.bad-manifest' }));
  });

  it('resolves each URL once into (tcp, IPv4, port) tuples', async () => {
    expect(await resolveWhitelist({ unrestricted: false, protocols: ['http'], urls: ['http://localhost:81', 'http://127.0.0.2'] })).toEqual([
      { protocol: 'tcp', ip: '127.0.0.1', port: 81, url: 'http://localhost:81' },
      { protocol: 'tcp', ip: '127.0.0.2', port: 80, url: 'http://127.0.0.2' },
    ]);
    await expect(resolveWhitelist({ unrestricted: false, protocols: ['http'], urls: ['http://no-such-host.invalid'] })).rejects.toMatchObject({ code: 'deploy.bad-manifest' });
  });
});
