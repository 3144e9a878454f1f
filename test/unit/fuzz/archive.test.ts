/**
 * Fuzzing the docker-save / OCI reader and the layer applier with mutated archives: typed errors
 * only, and nothing ever written outside the scratch directory.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { GvmiTestError } from '../../../src/errors.js';
import { readImageArchive, unpackOuterTar } from '../../../src/image/image-archive.js';
import { expansionBudget } from '../../../src/image/expansion-budget.js';
import { RootfsBuilder } from '../../../src/image/rootfs-from-layers.js';
import { FUZZ_LENGTH, FUZZ_SEED, FUZZ_TIMEOUT_MS, fuzzCases, mutate, rng } from '../../helpers/fuzz.js';
import { makeDockerSave, makeOciLayout, makeTar } from '../../helpers/tar-builder.js';

let dir: string;
let victim: string;
const seeds: Buffer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-fuzz-archive-'));
  victim = join(dir, 'victim');
  await mkdir(victim);
  const layers = [
    [{ name: 'etc/', type: 'directory' as const }, { name: 'etc/a', content: 'a' }, { name: 'etc/b', content: 'b' }, { name: 'link', type: 'symlink' as const, linkname: victim }],
    [{ name: 'etc/.wh.a', content: '' }, { name: 'link/pwned', content: 'x' }, { name: 'etc/h', type: 'link' as const, linkname: 'etc/b' }],
  ];
  seeds.push(await makeDockerSave({ config: { Volumes: { '/v': {} } }, layers }));
  seeds.push(await makeOciLayout({ config: {}, layers, gzipLayers: true }));
  // an outer archive that plants a symlink and writes through it
  seeds.push(await makeTar([{ name: 'out', type: 'symlink', linkname: victim }, { name: 'out/x', content: 'x' }, { name: 'manifest.json', content: '[]' }]));
});

describe('fuzz: image archives', () => {
  it(`mutated docker-save / OCI archives (${FUZZ_LENGTH}): typed errors only, nothing outside the scratch dir`, async () => {
    const next = rng(FUZZ_SEED + 2);
    const codes = new Map<string, number>();
    const ran = await fuzzCases('image archives', async (i) => {
      const input = mutate(next, seeds[i % seeds.length]!);
      const caseDir = join(dir, 'case');
      await mkdir(join(caseDir, 'outer'), { recursive: true });
      await mkdir(join(caseDir, 'rootfs'));
      await writeFile(join(caseDir, 'in.tar'), input);
      try {
        // The build's own budget: mutated headers declaring huge sizes must end typed too.
        const budget = await expansionBudget(caseDir, input.length);
        await unpackOuterTar(join(caseDir, 'in.tar'), join(caseDir, 'outer'), budget);
        const archive = await readImageArchive(join(caseDir, 'outer'));
        const builder = new RootfsBuilder(join(caseDir, 'rootfs'), budget);
        for (const layer of archive.layers) await builder.applyLayer(createReadStream(layer), layer);
        await builder.pseudoDefinitions();
        codes.set('ok', (codes.get('ok') ?? 0) + 1);
      } catch (error) {
        if (!(error instanceof GvmiTestError)) throw new Error(`case ${i} (seed ${FUZZ_SEED + 2}): untyped ${String((error as Error).stack ?? error)}`);
        codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
      } finally {
        await rm(caseDir, { recursive: true, force: true, maxRetries: 3 });
      }
    }, () => (codes.get('ok') ?? 0) > 0 && codes.size > 1);
    expect(ran).toBeGreaterThan(0);
    expect(await readdir(victim)).toEqual([]);
    expect(codes.get('ok') ?? 0).toBeGreaterThan(0);
    expect([...codes.keys()].filter((k) => k !== 'ok').length).toBeGreaterThan(0);
  }, FUZZ_TIMEOUT_MS);
});
