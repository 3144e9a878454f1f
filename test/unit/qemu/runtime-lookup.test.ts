/**
 * Where the guest runtime is found: an installed package's shipped files (unpacked into the cache
 * by content hash), a checkout's build, an override; and hashes that do not depend on where the
 * files are. Real files in temporary directories; the staging is scripts/stage-runtime.ts's own.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { findRuntime } from '../../../src/qemu/runtime-files.js';
import { GvmiTestError } from '../../../src/errors.js';
import { stageRuntime } from '../../../scripts/stage-runtime.js';

const KERNEL = randomBytes(200_000);
const INITRAMFS = Buffer.concat([Buffer.from('070701'), randomBytes(5000)]);
const TOOL = Buffer.from('#!/bin/sh\necho 2400000\n');
const hash16 = (b: Buffer): string => createHash('sha256').update(b).digest('hex').slice(0, 16);

let work: string;

/** A build's output and its runtime.json, as runtime/build.sh writes them (absolute paths). */
async function builtRuntime(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'vmlinux'), KERNEL);
  await writeFile(join(dir, 'initramfs.cpio'), INITRAMFS);
  await writeFile(join(dir, 'tsc-khz'), TOOL);
  const json = join(dir, 'runtime.json');
  await writeFile(json, JSON.stringify({
    kernel: join(dir, 'vmlinux'), kernelHash: 'b1a33099b0831316', initramfs: join(dir, 'initramfs.cpio'), initHash: '4fffd327074aabbc',
    runtimeHash: 'b1a33099b0831316-4fffd327074aabbc', tscKhzTool: join(dir, 'tsc-khz'),
  }));
  return json;
}

/** An installed package's root: dist/runtime staged, no Makefile. */
async function packageRoot(name: string): Promise<string> {
  const root = join(work, name, 'node_modules', 'gvmi-test');
  await stageRuntime({ runtimeJson: await builtRuntime(join(work, name, 'build')), outDir: join(root, 'dist', 'runtime'), cache: join(work, 'pack-cache') });
  return root;
}

async function failure(p: Promise<unknown>): Promise<GvmiTestError> {
  const error = await p.then(() => undefined, (x: unknown) => x);
  if (!(error instanceof GvmiTestError)) throw new Error(`expected a GvmiTestError, got ${String(error)}`);
  return error;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gvmi-runtime-lookup-'));
});

describe('the runtime an installed package ships', () => {
  it('is unpacked into the cache by content hash, verified, the tool executable, nothing pointing back into the package', async () => {
    const root = await packageRoot('one');
    const manifest = await readFile(join(root, 'dist/runtime/manifest.json'), 'utf8');
    expect(manifest).not.toContain(work); // no path of the packing machine
    const cache = join(work, 'cache-a');
    const r = await findRuntime({ root, env: {}, cache });
    expect(r.source).toBe('package');
    expect(r.kernelHash).toBe(hash16(KERNEL));
    expect(r.initHash).toBe(hash16(INITRAMFS));
    expect(r.runtimeHash).toBe(`${hash16(KERNEL)}-${hash16(INITRAMFS)}`);
    for (const path of [r.kernel, r.initramfs, r.tscKhzTool!]) expect(path.startsWith(join(cache, 'runtime-shipped'))).toBe(true);
    expect(await readFile(r.kernel)).toEqual(KERNEL);
    expect(await readFile(r.initramfs)).toEqual(INITRAMFS);
    expect((await stat(r.tscKhzTool!)).mode & 0o111).toBe(0o111);
  });

  it('two installs of the same package in different places: the same hashes and the same files (snapshot keys match)', async () => {
    const cache = join(work, 'cache-b');
    const a = await findRuntime({ root: await packageRoot('project-a'), env: {}, cache });
    const b = await findRuntime({ root: await packageRoot('elsewhere/project-b'), env: {}, cache });
    expect(b).toEqual(a);
  });

  it('a second lookup reuses the unpacked files', async () => {
    const root = await packageRoot('again');
    const cache = join(work, 'cache-c');
    const first = await findRuntime({ root, env: {}, cache });
    const before = (await stat(first.kernel)).mtimeMs;
    await findRuntime({ root, env: {}, cache });
    expect((await stat(first.kernel)).mtimeMs).toBe(before);
  });

  it('a damaged shipped file is setup.runtime-missing saying so, with the reinstall hint; nothing is left in the cache', async () => {
    const root = await packageRoot('damaged');
    const manifest = JSON.parse(await readFile(join(root, 'dist/runtime/manifest.json'), 'utf8')) as { files: { kernel: { path: string } } };
    await writeFile(join(root, 'dist/runtime', manifest.files.kernel.path), randomBytes(1000));
    const cache = join(work, 'cache-d');
    const error = await failure(findRuntime({ root, env: {}, cache }));
    expect(error.code).toBe('setup.runtime-missing');
    expect(error.message).toMatch(/damaged: .*vmlinux\.br does not/);
    expect(error.hint).toMatch(/npm install gvmi-test/);
    expect(await readdir(join(cache, 'runtime-shipped', createHash('sha256').update(KERNEL).digest('hex').slice(0, 32)))).toEqual([]);
  });

  it('a manifest naming a path outside its directory is refused', async () => {
    const root = await packageRoot('escape');
    const path = join(root, 'dist/runtime/manifest.json');
    const manifest = JSON.parse(await readFile(path, 'utf8')) as { files: { kernel: { path: string } } };
    manifest.files.kernel.path = '../../../../etc/passwd';
    await writeFile(path, JSON.stringify(manifest));
    expect((await failure(findRuntime({ root, env: {}, cache: join(work, 'cache-e') }))).message).toMatch(/not a relative path/);
  });

  it('a package without its runtime: the fix is reinstalling the package, not make', async () => {
    const error = await failure(findRuntime({ root: join(work, 'empty-package'), env: {}, cache: join(work, 'cache-f') }));
    expect(error.code).toBe('setup.runtime-missing');
    expect(error.hint).toMatch(/^npm install gvmi-test/);
  });
});

describe("a checkout's build", () => {
  async function checkout(name: string): Promise<string> {
    const root = join(work, name);
    await mkdir(join(root, 'runtime', '.build'), { recursive: true });
    await writeFile(join(root, 'Makefile'), 'runtime:\n');
    await writeFile(join(root, 'runtime', 'build.sh'), '');
    return root;
  }

  it('wins over a staged dist/runtime (the developer rebuilt it), with its own hashes', async () => {
    const root = await checkout('checkout-a');
    const built = await builtRuntime(join(work, 'checkout-a-cache'));
    await writeFile(join(root, 'runtime/.build/runtime.json'), await readFile(built));
    await stageRuntime({ runtimeJson: built, outDir: join(root, 'dist/runtime'), cache: join(work, 'pack-cache') });
    const r = await findRuntime({ root, env: {}, cache: join(work, 'cache-g') });
    expect(r).toMatchObject({ source: 'checkout', kernelHash: 'b1a33099b0831316', initHash: '4fffd327074aabbc', kernel: join(work, 'checkout-a-cache', 'vmlinux') });
  });

  it('not built: the fix is make runtime', async () => {
    const error = await failure(findRuntime({ root: await checkout('checkout-b'), env: {}, cache: join(work, 'cache-h') }));
    expect(error.code).toBe('setup.runtime-missing');
    expect(error.hint).toMatch(/^make runtime/);
  });

  it('built, then the cache cleared: setup.runtime-missing naming the file', async () => {
    const root = await checkout('checkout-c');
    await writeFile(join(root, 'runtime/.build/runtime.json'), JSON.stringify({ kernel: join(work, 'gone/vmlinux'), initramfs: join(work, 'gone/initramfs.cpio'), kernelHash: 'a', initHash: 'b', runtimeHash: 'a-b' }));
    const error = await failure(findRuntime({ root, env: {}, cache: join(work, 'cache-i') }));
    expect(error.message).toContain(join(work, 'gone/vmlinux'));
    expect(error.hint).toMatch(/make runtime/);
  });
});

describe('overrides', () => {
  it('GVMI_TEST_KERNEL + GVMI_TEST_INITRAMFS: content hashes, equal for the same files in two directories', async () => {
    const lookups = [];
    for (const dir of ['custom-1', 'somewhere/else/custom-2']) {
      const d = join(work, dir);
      await mkdir(d, { recursive: true });
      await writeFile(join(d, 'my-vmlinux'), KERNEL);
      await writeFile(join(d, 'my-initrd'), INITRAMFS);
      lookups.push(await findRuntime({ root: join(work, 'no-runtime-here'), env: { GVMI_TEST_KERNEL: join(d, 'my-vmlinux'), GVMI_TEST_INITRAMFS: join(d, 'my-initrd') }, cache: join(work, 'cache-j') }));
    }
    expect(lookups[0]).toMatchObject({ source: 'override', kernelHash: hash16(KERNEL), initHash: hash16(INITRAMFS), kernel: join(work, 'custom-1/my-vmlinux') });
    expect(lookups[1]!.runtimeHash).toBe(lookups[0]!.runtimeHash);
  });

  it('GVMI_TEST_KERNEL alone replaces the kernel of the shipped runtime, keeping its init and tool', async () => {
    const root = await packageRoot('kernel-only');
    const mine = join(work, 'kernel-only-vmlinux');
    const other = randomBytes(1000);
    await writeFile(mine, other);
    const cache = join(work, 'cache-k');
    const shipped = await findRuntime({ root, env: {}, cache });
    const r = await findRuntime({ root, env: { GVMI_TEST_KERNEL: mine }, cache });
    expect(r).toMatchObject({ source: 'override', kernel: mine, kernelHash: hash16(other), initramfs: shipped.initramfs, initHash: shipped.initHash, tscKhzTool: shipped.tscKhzTool });
    expect(r.runtimeHash).toBe(`${hash16(other)}-${shipped.initHash}`);
  });

  it('GVMI_TEST_INITRAMFS alone where there is no other runtime: says to set both', async () => {
    const error = await failure(findRuntime({ root: join(work, 'nothing'), env: { GVMI_TEST_INITRAMFS: '/nonexistent' }, cache: join(work, 'cache-l') }));
    expect(error.hint).toMatch(/set both GVMI_TEST_KERNEL and GVMI_TEST_INITRAMFS/);
  });

  it('GVMI_TEST_KERNEL naming a missing file: setup.runtime-missing', async () => {
    const root = await packageRoot('missing-override');
    const error = await failure(findRuntime({ root, env: { GVMI_TEST_KERNEL: join(work, 'nope') }, cache: join(work, 'cache-m') }));
    expect(error.code).toBe('setup.runtime-missing');
    expect(error.message).toContain('GVMI_TEST_KERNEL');
  });

  it('GVMI_TEST_RUNTIME: a runtime.json whose relative paths are read from its directory, hashed by content when it gives none', async () => {
    const d = join(work, 'relative');
    await mkdir(join(d, 'files'), { recursive: true });
    await writeFile(join(d, 'files/k'), KERNEL);
    await writeFile(join(d, 'files/i'), INITRAMFS);
    await writeFile(join(d, 'files/t'), TOOL);
    await chmod(join(d, 'files/t'), 0o755);
    await writeFile(join(d, 'runtime.json'), JSON.stringify({ kernel: 'files/k', initramfs: 'files/i', tscKhzTool: 'files/t' }));
    const r = await findRuntime({ root: await packageRoot('ignored'), env: { GVMI_TEST_RUNTIME: join(d, 'runtime.json') }, cache: join(work, 'cache-n') });
    expect(r).toEqual({
      source: 'override', kernel: join(d, 'files/k'), initramfs: join(d, 'files/i'), tscKhzTool: join(d, 'files/t'),
      kernelHash: hash16(KERNEL), initHash: hash16(INITRAMFS), runtimeHash: `${hash16(KERNEL)}-${hash16(INITRAMFS)}`,
    });
  });
});
