import { describe, expect, it } from 'vitest';
import { extraVolumeFinding, overlayFullFinding } from '../../../src/diagnostics/run-findings.js';
import { findingReason } from '../../../src/diagnostics/runtime-comparison.js';

const MIB = 1024 * 1024;

describe('overlay-full', () => {
  it('sizes in binary units, named as such (the overlay is 128 MiB, not 128 MB)', () => {
    const f = overlayFullFinding({ totalBytes: 128 * MIB, usedBytes: 127.9 * MIB }, [{ path: '/big', bytes: 127.8 * MIB }, { path: '/etc/hosts', bytes: 174 }], ['/golem/output']);
    expect(f.message).toContain('/ is a 128 MiB RAM overlay on a provider; 127.9 MiB were written outside volumes');
    expect(f.paths).toEqual(['/big (128 MiB)', '/etc/hosts (174 B)']);
    expect(f.message).not.toMatch(/\bMB\b/);
    expect(findingReason(f, '0.4')).toBe('the 128 MiB overlay filled up under 0.4 (files written outside volumes)');
  });

  it('empty files are not listed as where the space went', () => {
    const f = overlayFullFinding({ totalBytes: 128 * MIB, usedBytes: 128 * MIB }, [{ path: '/big', bytes: 100 * MIB }, { path: '/empty', bytes: 0 }], []);
    expect(f.paths).toEqual(['/big (100 MiB)']);
  });
});

describe('volume-not-in-image', () => {
  it('names the volumes the image does not declare: a 0.5 requestor must ask for them at deploy; the fix', () => {
    const f = extraVolumeFinding(['/data', '/golem/input', '/golem/output'], ['/golem/input', '/golem/output']);
    expect(f).toMatchObject({ code: 'volume-not-in-image', severity: 'info', paths: ['/data'] });
    expect(f!.message).toMatch(/only under ya-runtime-vm 0\.5 and only when the requestor's Deploy asks for a host volume there/);
    expect(f!.fix).toContain("ask for it at deploy (volumes: { '/data': host })");
    expect(f!.fix).toContain('--volume /golem/input=DIR');
    expect(f!.fix).toContain('VOLUME /data');
    expect(extraVolumeFinding(['/golem/input'], ['/golem/input', '/golem/output'])).toBeUndefined();
    expect(extraVolumeFinding(['/data'], [])!.fix).toBe("ask for it at deploy (volumes: { '/data': host }), or add VOLUME /data to the image (gvmi-test build --volume /data) so that every provider mounts it");
  });
});
