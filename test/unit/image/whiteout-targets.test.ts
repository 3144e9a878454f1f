/**
 * Whiteouts name an entry of their own directory. `.wh.`, `.wh..` and `.wh...` would name the
 * directory itself or its parent — from the top of a layer, the directory above the root
 * filesystem — and must be refused without removing anything.
 */
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { isGvmiTestError } from '../../../src/errors.js';
import { RootfsBuilder } from '../../../src/image/rootfs-from-layers.js';
import { makeTar, type TarEntry } from '../../helpers/tar-builder.js';

const lower: TarEntry[] = [
  { name: 'etc/', type: 'directory' },
  { name: 'etc/keep', content: 'keep' },
  { name: 'dir/', type: 'directory' },
  { name: 'dir/x', content: 'x' },
];

/** A scratch directory holding the root filesystem and, beside it, a sentinel file. */
async function scratch(): Promise<{ parent: string; root: string; builder: RootfsBuilder }> {
  const parent = await mkdtemp(join(tmpdir(), 'gvmi-whiteout-'));
  const root = join(parent, 'rootfs');
  await mkdir(root);
  await writeFile(join(parent, 'sentinel'), 'still here');
  const builder = new RootfsBuilder(root);
  await builder.applyLayer(Readable.from(await makeTar(lower)), 'lower');
  return { parent, root, builder };
}

describe('whiteouts of ".", ".." and ""', () => {
  it.each(['.wh..', '.wh...', '.wh.', 'dir/.wh..', 'dir/.wh...', 'dir/.wh.'])('%s is refused, nothing removed', async (name) => {
    const { parent, root, builder } = await scratch();
    const error = await builder.applyLayer(Readable.from(gzipSync(await makeTar([{ name, content: '' }]))), 'upper')
      .then(() => undefined, (e: unknown) => e);
    expect(isGvmiTestError(error, 'build.path-escape'), String(error)).toBe(true);
    expect(await readFile(join(parent, 'sentinel'), 'utf8')).toBe('still here');
    expect((await readdir(parent)).sort()).toEqual(['rootfs', 'sentinel']);
    expect((await readdir(root)).sort()).toEqual(['dir', 'etc']);
    expect(await readdir(join(root, 'dir'))).toEqual(['x']);
  });

  it('ordinary whiteouts and opaque markers still work', async () => {
    const { parent, root, builder } = await scratch();
    await builder.applyLayer(Readable.from(await makeTar([
      { name: 'etc/.wh.keep', content: '' },
      { name: 'dir/', type: 'directory' },
      { name: 'dir/.wh..wh..opq', content: '' },
      { name: 'dir/new', content: 'new' },
    ])), 'upper');
    expect(await readdir(join(root, 'etc'))).toEqual([]);
    expect(await readdir(join(root, 'dir'))).toEqual(['new']);
    expect((await readdir(parent)).sort()).toEqual(['rootfs', 'sentinel']);
  });
});
