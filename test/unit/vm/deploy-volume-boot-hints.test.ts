import { describe, expect, it } from 'vitest';
import { explainInitFailure } from '../../../src/vm/console-log.js';

describe('a deploy volume stopping the boot is explained', () => {
  it('a path through a symbolic link or a file (ELOOP, ENOTDIR)', () => {
    for (const errno of [40, 20]) {
      expect(explainInitFailure({ step: 'deploy-volume', errno, line: '' })).toMatch(/a component of its path is a symbolic link or a file there; a provider's VM stops at boot the same way/);
    }
  });

  it('a storage disk that could not be formatted', () => {
    expect(explainInitFailure({ step: 'deploy-mkfs', errno: 5, line: '' })).toMatch(/could not format a storage volume's disk as ext2/);
  });
});
