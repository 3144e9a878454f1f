/**
 * Puts the guest runtime into the package: `npm pack` runs this (package.json `prepack`, after the
 * TypeScript build) so that an installed gvmi-test needs no checkout, kernel build or Makefile.
 *
 *   npx tsx scripts/stage-runtime.ts            runtime/build.sh, then stage into dist/runtime
 *   npx tsx scripts/stage-runtime.ts --no-build stage what runtime/.build/runtime.json names
 *
 * dist/runtime/manifest.json names each file by a path relative to it, inside a directory named
 * by the runtime's hash, with the sha256 of its contents (format: src/qemu/shipped-runtime.ts);
 * no absolute path of this machine goes in. Files are brotli-compressed (the kernel: 17 MiB to
 * under 3 MiB); the compressed copies are cached by content hash, so packing again is quick.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { constants as zlib, brotliCompress } from 'node:zlib';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ShippedFile, ShippedRuntimeManifest } from '../src/qemu/shipped-runtime.js';

const compress = promisify(brotliCompress);

interface BuiltRuntime {
  kernel: string;
  initramfs: string;
  kernelHash: string;
  initHash: string;
  tscKhzTool?: string;
}

export interface StageOptions {
  /** runtime/.build/runtime.json or one like it. */
  runtimeJson: string;
  /** Replaced whole: dist/runtime. */
  outDir: string;
  /** Where compressed copies are kept between packs. */
  cache: string;
  /** The host the tsc-khz tool was built for (the packing machine's). */
  toolHost?: string;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Brotli at quality 9: 2.75 MB for the kernel in ~3 s, where 11 saves 0.25 MB more for 20 s. */
async function compressed(bytes: Buffer, digest: string, cache: string): Promise<Buffer> {
  const cached = join(cache, 'runtime-packed', `${digest}.br`);
  const hit = await readFile(cached).catch(() => undefined);
  if (hit) return hit;
  const packed = await compress(bytes, {
    params: { [zlib.BROTLI_PARAM_QUALITY]: 9, [zlib.BROTLI_PARAM_LGWIN]: 24, [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  });
  await mkdir(dirname(cached), { recursive: true });
  await writeFile(`${cached}.${process.pid}.tmp`, packed);
  await rename(`${cached}.${process.pid}.tmp`, cached);
  return packed;
}

export async function stageRuntime(options: StageOptions): Promise<ShippedRuntimeManifest> {
  const built = JSON.parse(await readFile(options.runtimeJson, 'utf8')) as BuiltRuntime;
  const base = dirname(options.runtimeJson);
  const read = (path: string): Promise<Buffer> => readFile(resolve(base, path));
  const [kernel, initramfs, tool] = await Promise.all([read(built.kernel), read(built.initramfs), built.tscKhzTool ? read(built.tscKhzTool) : undefined]);
  const kernelSha = sha256(kernel);
  const initSha = sha256(initramfs);
  const kernelHash = kernelSha.slice(0, 16);
  const initHash = initSha.slice(0, 16);
  const runtimeHash = `${kernelHash}-${initHash}`;

  const staging = `${options.outDir}.${process.pid}.tmp`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(join(staging, runtimeHash), { recursive: true });
  const place = async (bytes: Buffer, digest: string, name: string): Promise<ShippedFile> => {
    const path = `${runtimeHash}/${name}.br`;
    await writeFile(join(staging, path), await compressed(bytes, digest, options.cache));
    return { path, encoding: 'br', sha256: digest, bytes: bytes.length };
  };
  const toolSha = tool ? sha256(tool) : undefined;
  const [kernelFile, initramfsFile, toolFile] = await Promise.all([
    place(kernel, kernelSha, 'vmlinux'),
    place(initramfs, initSha, 'initramfs.cpio'),
    tool && toolSha ? place(tool, toolSha, 'tsc-khz') : undefined,
  ]);
  const manifest: ShippedRuntimeManifest = {
    format: 1, kernelHash, initHash, runtimeHash,
    built: { kernelInputs: built.kernelHash, initInputs: built.initHash },
    files: {
      kernel: kernelFile, initramfs: initramfsFile,
      ...(toolFile ? { tscKhzTool: { ...toolFile, host: (options.toolHost ?? 'linux-x64') as 'linux-x64' } } : {}),
    },
  };
  await writeFile(join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await rm(options.outDir, { recursive: true, force: true });
  await rename(staging, options.outDir);
  return manifest;
}

async function main(): Promise<void> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const cache = process.env['GVMI_TEST_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(process.env['HOME'] ?? '/tmp', '.cache'), 'gvmi-test');
  if (!process.argv.includes('--no-build')) execFileSync('bash', [join(root, 'runtime', 'build.sh')], { stdio: 'inherit' });
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    // The tool in the manifest is for linux-x64; the guest files are the same on any host.
    throw new Error(`stage-runtime: packing is supported on linux-x64 hosts (this is ${process.platform}-${process.arch})`);
  }
  const manifest = await stageRuntime({ runtimeJson: join(root, 'runtime', '.build', 'runtime.json'), outDir: join(root, 'dist', 'runtime'), cache });
  const total = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
  process.stderr.write(`stage-runtime: dist/runtime/${manifest.runtimeHash} (kernel ${manifest.kernelHash}, init ${manifest.initHash}; ${(total / 1048576).toFixed(1)} MiB unpacked)\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`stage-runtime: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
