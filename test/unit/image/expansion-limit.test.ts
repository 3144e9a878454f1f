/**
 * What an archive may expand to while `build` unpacks it: capped by a ratio to the archive's size
 * (and the scratch filesystem's free space), counted while streaming, declared sizes checked
 * before writing; a refused build leaves nothing in the scratch directory.
 */
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { GvmiTestError, isGvmiTestError } from '../../../src/errors.js';
import { buildImage } from '../../../src/image/build-image.js';
import { EXPAND_FLOOR, expansionBudget, parseMaxExpand } from '../../../src/image/expansion-budget.js';
import { RootfsBuilder } from '../../../src/image/rootfs-from-layers.js';
import { makeDockerSave, makeTar, type TarEntry } from '../../helpers/tar-builder.js';

const MiB = 1024 * 1024;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-expand-'));
});

// Each build's scratch directory goes to a TMPDIR of this test's own, so "nothing left" is exact.
let scratchParent: string;
let savedTmpdir: string | undefined;
beforeEach(async () => {
  savedTmpdir = process.env['TMPDIR'];
  scratchParent = await mkdtemp(join(dir, 'tmp-'));
  process.env['TMPDIR'] = scratchParent;
});
afterEach(() => {
  if (savedTmpdir === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = savedTmpdir;
});

async function errorOf(p: Promise<unknown>): Promise<GvmiTestError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(isGvmiTestError(e), String(e)).toBe(true);
  return e as GvmiTestError;
}

/** A docker-save archive of one gzip layer holding one file of `bytes` zeros: ~1/1000 of that. */
async function zerosArchive(name: string, bytes: number): Promise<string> {
  const archive = join(dir, name);
  await writeFile(archive, await makeDockerSave({
    config: { Volumes: { '/out': {} } },
    gzipLayers: true,
    layers: [[{ name: 'etc/', type: 'directory' }, { name: 'zeros', content: '\0'.repeat(bytes) }]],
  }));
  return archive;
}

/** The tar with its first header's size field rewritten (base-256, as GNU tar writes sizes ≥ 8 GiB). */
function declaringSize(tar: Buffer, size: bigint): Buffer {
  const out = Buffer.from(tar);
  out.fill(0, 124, 136);
  out[124] = 0x80;
  let rest = size;
  for (let i = 135; i > 124; i--, rest >>= 8n) out[i] = Number(rest & 0xffn);
  out.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += out[i]!;
  out.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return out;
}

/** A docker-save archive around one ready-made layer blob. */
async function dockerSaveWithLayer(layer: Buffer): Promise<Buffer> {
  const entries: TarEntry[] = [
    { name: 'l/layer.tar', content: layer.toString('latin1') },
    { name: 'c.json', content: JSON.stringify({ architecture: 'amd64', config: { Volumes: { '/out': {} } } }) },
    { name: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', Layers: ['l/layer.tar'] }]) },
  ];
  return makeTar(entries, 'latin1');
}

describe('build: what an archive expands to is capped', () => {
  it('a small gzip layer expanding past 20× / 64 MiB is refused; no scratch files, no output', async () => {
    const archive = await zerosArchive('bomb.tar', EXPAND_FLOOR + 16 * MiB);
    const out = join(dir, 'bomb-out');
    await mkdir(out);
    const e = await errorOf(buildImage({ source: archive, output: join(out, 'bomb.gvmi') }));
    expect(e.code).toBe('build.too-large');
    expect(e.message).toMatch(/64\.0 MiB allowed/);
    expect(e.hint).toContain('--max-expand');
    expect(await readdir(scratchParent)).toEqual([]);
    expect(await readdir(out)).toEqual([]);
  });

  it('a tar entry declaring 100 GiB is refused before anything of it is written', async () => {
    const layer = gzipSync(declaringSize(await makeTar([{ name: 'huge', content: 'x' }]), 100n * 1024n ** 3n));
    const archive = join(dir, 'declared.tar');
    await writeFile(archive, await dockerSaveWithLayer(layer));
    const e = await errorOf(buildImage({ source: archive, output: join(dir, 'declared.gvmi') }));
    expect(e.code).toBe('build.too-large');
    expect(e.message).toContain('"huge" declares 100.0 GiB');
    expect(await readdir(scratchParent)).toEqual([]);
  });

  it('a flood of empty entries is stopped while streaming, part way through', async () => {
    const root = join(dir, 'flood-root');
    await mkdir(root);
    // Empty files declare nothing: only counting the stream itself (their headers) stops them.
    const entries: TarEntry[] = Array.from({ length: 600 }, (_, i) => ({ name: `f${i}`, content: '' }));
    const budget = await expansionBudget(dir, 1, { bytes: 128 * 1024 });
    const builder = new RootfsBuilder(root, budget);
    const e = await errorOf(builder.applyLayer(Readable.from(gzipSync(await makeTar(entries))), 'flood'));
    expect(e.code).toBe('build.too-large');
    const written = (await readdir(root)).length;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(600);
  });

  it('a normal archive still builds with the default cap', async () => {
    const archive = join(dir, 'normal.tar');
    await writeFile(archive, await makeDockerSave({
      config: { Volumes: { '/out': {} } },
      gzipLayers: true,
      layers: [[{ name: 'etc/', type: 'directory' }, { name: 'etc/hostname', content: 'x' }], [{ name: 'bin/', type: 'directory' }, { name: 'bin/app', content: 'a'.repeat(100_000) }]],
    }));
    const result = await buildImage({ source: archive, output: join(dir, 'normal.gvmi') });
    expect(result.sourceKind).toBe('docker-save');
    expect(await readdir(scratchParent)).toEqual([]);
  });

  it('--max-expand / maxExpand / GVMI_TEST_MAX_EXPAND let a really large image through', async () => {
    const archive = await zerosArchive('big.tar', EXPAND_FLOOR + 16 * MiB);
    await buildImage({ source: archive, output: join(dir, 'big-ratio.gvmi'), maxExpand: '5000x' });
    await buildImage({ source: archive, output: join(dir, 'big-bytes.gvmi'), maxExpand: 200 * MiB });
    process.env['GVMI_TEST_MAX_EXPAND'] = '1GiB';
    try {
      await buildImage({ source: archive, output: join(dir, 'big-env.gvmi') });
    } finally {
      delete process.env['GVMI_TEST_MAX_EXPAND'];
    }
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const io = { stdout: new PassThrough(), stderr, stdin: new PassThrough() };
    expect(await runCli(['build', archive, '-o', join(dir, 'big-cli-refused.gvmi'), '--max-expand', '1MiB'], io)).toBe(65);
    expect(err).toContain('the 1.0 MiB allowed by max-expand [build.too-large]');
    expect(await runCli(['build', archive, '-o', join(dir, 'big-cli-bad.gvmi'), '--max-expand', 'lots'], io)).toBe(2);
  });

  it('parses sizes and ratios', () => {
    expect(parseMaxExpand('8GiB')).toEqual({ bytes: 8 * 1024 * MiB });
    expect(parseMaxExpand('512M')).toEqual({ bytes: 512 * MiB });
    expect(parseMaxExpand('4096')).toEqual({ bytes: 4096 });
    expect(parseMaxExpand(4096)).toEqual({ bytes: 4096 });
    expect(parseMaxExpand('100x')).toEqual({ ratio: 100 });
    for (const bad of ['', 'lots', '0', '-1', '0x', '1.5.2G']) expect(() => parseMaxExpand(bad), bad).toThrow(/max-expand/);
  });
});
