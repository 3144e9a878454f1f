/**
 * Volume paths that climb (`/../../tmp/x`) or hide a `.` component are refused wherever they
 * enter: in a .gvmi's config, in `build` options, and from a caller binding a volume. A provider's
 * init refuses to mount them too (MOUNT_VOLUME → EINVAL).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeTrailer, readGvmi } from '../../../src/image/gvmi-file.js';
import { normaliseVolumePath, volumePathProblem } from '../../../src/image/container-config.js';
import { containerConfigFor } from '../../../src/image/build-image.js';
import { planVolumes } from '../../../src/vm/volumes.js';
import { smallSquashfs } from '../../helpers/small-squashfs.js';

const CLIMBING = ['/../../../tmp/x', '/golem/../../etc', '/golem/./input', '/a/..', '/.', 'relative/path', 'golem'];

let squashfs: Buffer;
let dir: string;
beforeAll(async () => {
  ({ bytes: squashfs } = await smallSquashfs());
  dir = await mkdtemp(join(tmpdir(), 'gvmi-volpath-'));
});

describe('volume paths', () => {
  it.each(CLIMBING)('%s is refused', (path) => {
    expect(volumePathProblem(path)).toBeDefined();
    expect(() => normaliseVolumePath(path)).toThrow(expect.objectContaining({ code: 'usage' }));
  });

  it('plain paths pass, with repeated and trailing slashes folded', () => {
    expect(normaliseVolumePath('//golem///input/')).toBe('/golem/input');
    expect(normaliseVolumePath('/')).toBe('/');
    expect(normaliseVolumePath('/golem/..data')).toBe('/golem/..data');
  });

  it('a .gvmi declaring a climbing VOLUME is refused when read (image.bad-volume)', async () => {
    const path = join(dir, 'climb.gvmi');
    await writeFile(path, Buffer.concat([squashfs, encodeTrailer({ Volumes: { '/golem/output': {}, '/../../../tmp/x': {} } })]));
    await expect(readGvmi(path)).rejects.toMatchObject({ code: 'image.bad-volume' });
  });

  it('build refuses such a volume from its options and from the source image config', () => {
    expect(() => containerConfigFor({}, { volumes: ['/golem/../../x'] }, 'id')).toThrow(expect.objectContaining({ code: 'build.bad-option' }));
    expect(() => containerConfigFor({ Volumes: { '/x/../../y': {} } }, {}, 'id')).toThrow(expect.objectContaining({ code: 'build.bad-archive' }));
  });

  it('a caller binding refuses it before any directory is touched', async () => {
    const host = join(dir, 'bound');
    await expect(planVolumes([], { '/golem/../../tmp': host })).rejects.toMatchObject({ code: 'usage' });
  });
});
