import { mkdtemp, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { inject } from 'vitest';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage, NO_VOLUME_WARNING } from '../../../src/image/build-image.js';
import { listSquashfs } from '../../../src/image/squashfs-listing.js';
import { DOCKER_INIT_LAYER } from '../../../src/image/docker-init-layer.js';
import { isGvmiTestError } from '../../../src/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-build-'));
});

async function walk(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, prefix), { withFileTypes: true })) {
    const rel = `${prefix}/${e.name}`;
    out.push(rel);
    if (e.isDirectory()) out.push(...(await walk(root, rel)));
  }
  return out;
}

async function errorOf(p: Promise<unknown>): Promise<{ code: string }> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(isGvmiTestError(e), String(e)).toBe(true);
  return e as { code: string };
}

describe('gvmi-test build from a directory', () => {
  it('round trip: unsquashfs lists exactly the source tree, metadata as given', async () => {
    const source = inject('tinyRootfs');
    const output = join(dir, 'roundtrip.gvmi');
    const result = await buildImage({
      source, output, volumes: ['/golem/input', '/golem/output/'], env: ['A=1', 'B=two words'],
      workdir: '/golem/work', entrypoint: ['/bin/sh'], cmd: ['-c', 'true'], labels: { author: 'me' },
    });
    const listed = (await listSquashfs(output)).map((e) => e.path).filter((p) => p !== '/').sort();
    // the source tree under Docker's init layer, as gvmkit-build's images (docker-init-layer.test.ts)
    const initLayer = DOCKER_INIT_LAYER.map((e) => `/${e.path}`);
    expect(listed).toEqual([...new Set([...(await walk(source)), ...initLayer])].sort());
    expect(result.image.metadata).toMatchObject({
      volumes: ['/golem/input', '/golem/output'], env: ['A=1', 'B=two words'], workingDir: '/golem/work',
      entrypoint: ['/bin/sh'], cmd: ['-c', 'true'], labels: { author: 'me' },
    });
    expect(result.image.squashfs.compression).toBe('lzo');
    expect(result.warnings).toEqual([]);
  });

  it.each(['gzip', 'lz4', 'zstd', 'xz'] as const)('--compression %s is what the squashfs says', async (compression) => {
    const output = join(dir, `c-${compression}.gvmi`);
    const result = await buildImage({ source: inject('tinyRootfs'), output, compression, volumes: ['/in'] });
    expect(result.image.squashfs.compression).toBe(compression);
  });

  it('warns when the image has no VOLUME', async () => {
    const result = await buildImage({ source: inject('tinyRootfs'), output: join(dir, 'novol.gvmi') });
    expect(result.warnings).toContain(NO_VOLUME_WARNING);
  });

  it('refuses to overwrite without force, replaces with force', async () => {
    const output = join(dir, 'exists.gvmi');
    await writeFile(output, 'precious');
    expect((await errorOf(buildImage({ source: inject('tinyRootfs'), output }))).code).toBe('build.output-exists');
    expect((await stat(output)).size).toBe(8);
    await buildImage({ source: inject('tinyRootfs'), output, force: true });
    expect((await stat(output)).size).toBeGreaterThan(8);
  });

  it('a failed build leaves no half-written file behind', async () => {
    const source = join(dir, 'big-src');
    await mkdir(source);
    await writeFile(join(source, 'random.bin'), randomBytes(48 * 1024 * 1024));
    const out = join(dir, 'failed');
    await mkdir(out);
    const abort = new AbortController();
    const e = await errorOf(buildImage({
      source, output: join(out, 'x.gvmi'), compression: 'xz', signal: abort.signal,
      onProgress: (stage) => { if (stage === 'mksquashfs') setTimeout(() => abort.abort(), 200); },
    }));
    expect(e.code).toBe('build.mksquashfs-failed');
    expect(await readdir(out)).toEqual([]);
  });

  it('an output directory that does not exist is refused up front (the output cannot be created: 73)', async () => {
    const e = await errorOf(buildImage({ source: inject('tinyRootfs'), output: join(dir, 'no', 'such', 'x.gvmi') }));
    expect(e.code).toBe('build.output-unwritable');
  });

  it('bad options and sources get usage/build codes', async () => {
    expect((await errorOf(buildImage({ source: join(dir, 'missing'), output: join(dir, 'm.gvmi') }))).code).toBe('build.bad-source');
    expect((await errorOf(buildImage({ source: inject('tinyRootfs'), output: join(dir, 'v.gvmi'), volumes: ['relative'] }))).code).toBe('build.bad-option');
    expect((await errorOf(buildImage({ source: inject('tinyRootfs'), output: join(dir, 'e.gvmi'), env: ['NOEQUALS'] }))).code).toBe('build.bad-option');
  });
});
