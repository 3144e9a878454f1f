import { describe, expect, it } from 'vitest';
import { findImageErrors } from '../../../src/vm/console-log.js';
import { imageCorruptFinding } from '../../../src/diagnostics/image-damage.js';
import { killedBySignalFinding } from '../../../src/diagnostics/run-findings.js';
import { damagedFileOf } from '../../../src/image/verify-image.js';

const console = [
  '[    0.512] virtio_blk virtio0: [vda] 2185 512-byte logical blocks',
  'SQUASHFS error: lzo decompression failed, data probably corrupt',
  'SQUASHFS error: Failed to read block 0x4f512: -5',
  'SQUASHFS error: lzo decompression failed, data probably corrupt',
  '[   12.001] I/O error, dev vda, sector 1234 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0',
  'Buffer I/O error on dev vda, logical block 17, async page read',
  'EXT4-fs: something else entirely',
].join('\r\n');

describe('a damaged image, as the guest console shows it', () => {
  it('findImageErrors: squashfs and block I/O errors, distinct, without \\r or timestamps', () => {
    expect(findImageErrors(console)).toEqual([
      'SQUASHFS error: lzo decompression failed, data probably corrupt',
      'SQUASHFS error: Failed to read block 0x4f512: -5',
      'I/O error, dev vda, sector 1234 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0',
      'Buffer I/O error on dev vda, logical block 17, async page read',
    ]);
    expect(findImageErrors(console, 1)).toHaveLength(1);
    expect(findImageErrors('Run /init as init process\r\nGVMI-INIT-FATAL hosts 2\r\n')).toEqual([]);
  });

  it('image-corrupt names the console line, rebuilding and inspect --verify', () => {
    const f = imageCorruptFinding(['SQUASHFS error: lzo decompression failed, data probably corrupt']);
    expect(f).toMatchObject({ code: 'image-corrupt', severity: 'error' });
    expect(f.message).toMatch(/squashfs is damaged \(SQUASHFS error: lzo decompression failed/);
    expect(f.fix).toMatch(/rebuild the image, or download it again/);
    expect(f.fix).toMatch(/inspect --verify/);
  });

  it('killed-by-signal: one line naming the signal, what a requestor sees, a cause', () => {
    const f = killedBySignalFinding({ signal: 'SIGBUS', signalNumber: 7, timedOut: false });
    expect(f?.message).toMatch(/^killed by SIGBUS \(a bus error/);
    expect(f?.message).toContain('gvmi-test exits 135, a requestor sees only "exit code 7"');
    expect(killedBySignalFinding({ signal: 'SIGUSR1', signalNumber: 10 })?.message).toBe('killed by SIGUSR1; gvmi-test exits 138, a requestor sees only "exit code 10"');
    // an exit status, or gvmi-test's own timeout kill (exec.timeout says that): nothing
    expect(killedBySignalFinding({ signal: null })).toBeUndefined();
    expect(killedBySignalFinding({ signal: 'SIGKILL', timedOut: true })).toBeUndefined();
  });

  it('damagedFileOf reads the file unsquashfs failed on', () => {
    expect(damagedFileOf('lzo uncompress failed with error code -4\nFATAL ERROR: cat: failed to read/uncompress file //bin/busybox\n')).toBe('/bin/busybox');
    expect(damagedFileOf('nothing useful')).toBeUndefined();
  });
});
