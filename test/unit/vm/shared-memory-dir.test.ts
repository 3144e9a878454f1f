import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { roomyDirectory, sharedMemoryDir, SHM_DIR, type FreeSpace } from '../../../src/vm/shared-memory-dir.js';

const MiB = 1024 * 1024;
const free = (table: Record<string, number | undefined>): FreeSpace => async (path) => table[path];

describe('where a VM to be saved keeps its RAM file', () => {
  it('the first place with room for the whole guest RAM and a margin; none when neither has', async () => {
    expect(await roomyDirectory(['/a', '/b'], 512, free({ '/a': 1024 * MiB, '/b': 1024 * MiB }))).toBe('/a');
    // A container's 64 MiB /dev/shm: a guest touching its 512 MiB there would die of SIGBUS.
    expect(await roomyDirectory(['/a', '/b'], 512, free({ '/a': 64 * MiB, '/b': 1024 * MiB }))).toBe('/b');
    expect(await roomyDirectory(['/a', '/b'], 512, free({ '/a': 520 * MiB, '/b': undefined }))).toBeUndefined();
    expect(await roomyDirectory(['/a'], 512, free({}))).toBeUndefined();
  });

  it('a directory of its own in /dev/shm when it has room, else the fallback directory as it is, else nothing', async () => {
    const fallback = await mkdtemp(join(tmpdir(), 'gvmi-shm-unit-'));
    try {
      const inShm = await sharedMemoryDir(512, fallback, free({ [SHM_DIR]: 4096 * MiB, [fallback]: 4096 * MiB }));
      expect(inShm?.made).toBe(true);
      expect(inShm?.dir.startsWith(`${SHM_DIR}/gvmi-ram-`)).toBe(true);
      expect(((await stat(inShm!.dir)).mode & 0o777)).toBe(0o700);
      await rm(inShm!.dir, { recursive: true });
      expect(await sharedMemoryDir(512, fallback, free({ [SHM_DIR]: 64 * MiB, [fallback]: 4096 * MiB }))).toEqual({ dir: fallback, made: false });
      expect(await sharedMemoryDir(512, fallback, free({ [SHM_DIR]: 64 * MiB, [fallback]: 100 * MiB }))).toBeUndefined();
    } finally {
      await rm(fallback, { recursive: true, force: true });
    }
  });
});
