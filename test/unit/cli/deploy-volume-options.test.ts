import { describe, expect, it } from 'vitest';
import { deployVolumesFromFlags, parseVolumeSize } from '../../../src/cli/deploy-volume-options.js';

describe('deploy volume options', () => {
  it('sizes in MiB, M or G', () => {
    expect(parseVolumeSize('64', 'x')).toBe(64);
    expect(parseVolumeSize('64M', 'x')).toBe(64);
    expect(parseVolumeSize('64MiB', 'x')).toBe(64);
    expect(parseVolumeSize('2G', 'x')).toBe(2048);
    for (const bad of ['0', '-1', '1.5', 'big', '64K', '']) expect(() => parseVolumeSize(bad, 'x')).toThrow(expect.objectContaining({ code: 'usage' }));
  });

  it('--host-volume, --ram-volume PATH:SIZE, --storage-volume PATH:SIZE[:ERRORS]', () => {
    expect(deployVolumesFromFlags({ hostVolume: ['/cache'], ramVolume: ['/:256M', '/data:64'], storageVolume: ['/store:1G:remount-ro', '/s2:8'] })).toEqual({
      '/cache': { kind: 'host' },
      '/': { kind: 'ram', sizeMiB: 256 },
      '/data': { kind: 'ram', sizeMiB: 64 },
      '/store': { kind: 'storage', sizeMiB: 1024, errors: 'remount-ro' },
      '/s2': { kind: 'storage', sizeMiB: 8 },
    });
  });

  it.each([
    [{ ramVolume: ['/data'] }, /PATH:SIZE/],
    [{ ramVolume: ['/data:8:x'] }, /PATH:SIZE/],
    [{ storageVolume: ['/s:8:sometimes'] }, /errors mode "sometimes" is not one of continue, remount-ro, panic/],
    [{ storageVolume: ['/s:8:continue:x'] }, /PATH:SIZE\[:continue\|remount-ro\|panic\]/],
    [{ ramVolume: ['/d:8'], storageVolume: ['/d:8'] }, /given twice/],
  ])('refuses %j', (flags, message) => {
    expect(() => deployVolumesFromFlags(flags)).toThrow(expect.objectContaining({ code: 'usage', message: expect.stringMatching(message) }));
  });
});
