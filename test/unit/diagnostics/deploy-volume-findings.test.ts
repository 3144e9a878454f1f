import { describe, expect, it } from 'vitest';
import { deployVolumeFindings } from '../../../src/diagnostics/deploy-volume-findings.js';
import { overlayFullFinding } from '../../../src/diagnostics/run-findings.js';

const MiB = 1024 * 1024;

describe('deploy volume findings', () => {
  it('a full ram volume: named with its kind, path and size, and the fixes that fit a tmpfs', () => {
    const [f, ...rest] = deployVolumeFindings([{ guestPath: '/data', kind: 'ram', totalBytes: 8 * MiB, usedBytes: 8 * MiB, readOnly: false }], '/golem/output');
    expect(rest).toEqual([]);
    expect(f).toMatchObject({ code: 'deploy-volume-full', severity: 'error', paths: ['/data'] });
    expect(f!.message).toBe('out of space: the ram volume /data (a tmpfs of 8.0 MiB in the VM\'s memory, the size the deploy asked for) is full; 8.0 MiB of 8.0 MiB used');
    expect(f!.fix).toMatch(/bigger ram volume \(--ram-volume \/data:SIZE/);
    expect(f!.fix).toMatch(/storage volume there/);
    expect(f!.fix).toMatch(/host volume such as \/golem\/output/);
  });

  it('a full storage volume: its own fix', () => {
    const [f] = deployVolumeFindings([{ guestPath: '/store', kind: 'storage', totalBytes: 31 * MiB, usedBytes: 31 * MiB - 3000, readOnly: false, errors: 'continue' }]);
    expect(f).toMatchObject({ code: 'deploy-volume-full', paths: ['/store'] });
    expect(f!.message).toMatch(/^out of space: the storage volume \/store \(an ext2 disk of 31 MiB, the size the deploy asked for\) is full/);
    expect(f!.fix).toMatch(/bigger storage volume \(--storage-volume \/store:SIZE/);
  });

  it('a storage volume remounted read-only says why', () => {
    const [f] = deployVolumeFindings([{ guestPath: '/store', kind: 'storage', totalBytes: 31 * MiB, usedBytes: MiB, readOnly: true, errors: 'remount-ro' }]);
    expect(f).toMatchObject({ code: 'deploy-volume-read-only', paths: ['/store'] });
    expect(f!.message).toMatch(/errors=remount-ro remounted it read-only/);
  });

  it('nothing for volumes with room', () => {
    expect(deployVolumeFindings([
      { guestPath: '/data', kind: 'ram', totalBytes: 8 * MiB, usedBytes: 4 * MiB, readOnly: false },
      { guestPath: '/store', kind: 'storage', totalBytes: 8 * MiB, usedBytes: 0, readOnly: false },
    ])).toEqual([]);
  });

  it('overlay-full names a ram volume at / and the bigger size as a fix', () => {
    const f = overlayFullFinding({ totalBytes: 32 * MiB, usedBytes: 32 * MiB }, [{ path: '/big', bytes: 32 * MiB }], ['/golem/output'], { kind: 'ram' });
    expect(f.message).toBe('out of space: / is an overlay on the ram volume the deploy put at / (32 MiB, in the VM\'s memory); 32.0 MiB were written outside volumes');
    expect(f.fix).toMatch(/^ask for a bigger ram volume at \/ \(--ram-volume \/:SIZE/);
    expect(overlayFullFinding({ totalBytes: 128 * MiB, usedBytes: 128 * MiB }, [], ['/golem/output']).message).toMatch(/^out of space: \/ is a 128 MiB RAM overlay on a provider/);
  });
});
