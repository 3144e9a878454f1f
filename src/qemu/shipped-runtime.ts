/**
 * The guest runtime an npm package carries: `npm pack` (scripts/stage-runtime.ts) puts the
 * kernel, the initramfs and, for x86-64 Linux hosts, the tsc-khz tool under dist/runtime/, each
 * brotli-compressed in a directory named by the runtime's hash, and a manifest with their paths
 * relative to it and the sha256 of their contents. Nothing in it names the packing machine.
 *
 * Before use each file is unpacked once into the cache, at a path named by its sha256
 * (`$GVMI_TEST_CACHE/runtime-shipped/<sha256>/<name>`), and verified: the kernel is 17 MiB
 * unpacked against 3 MiB packed, so each project's node_modules stays small; the paths QEMU is
 * given (they are in the snapshot key's command line) are the same for every install of the same
 * runtime, so snapshots are shared across projects; and the tool is executable even where
 * node_modules is not (npm does not promise modes, a mount may be noexec).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress } from 'node:zlib';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { GvmiTestError } from '../errors.js';

/** Where the staged runtime sits in the package, relative to its root. */
export const SHIPPED_RUNTIME_DIR = join('dist', 'runtime');
export const SHIPPED_MANIFEST = 'manifest.json';

export interface ShippedFile {
  /** Relative to the manifest's directory, '/'-separated. */
  path: string;
  encoding: 'br' | 'identity';
  /** Of the unpacked contents. */
  sha256: string;
  bytes: number;
}

export interface ShippedRuntimeManifest {
  format: 1;
  /** The first 16 hex digits of the unpacked files' sha256: the runtime's identity in snapshot keys. */
  kernelHash: string;
  initHash: string;
  runtimeHash: string;
  /** The build's own input hashes (runtime/build.sh), to tell which source the files came from. */
  built: { kernelInputs: string; initInputs: string };
  files: {
    kernel: ShippedFile;
    initramfs: ShippedFile;
    /** Only for the host it was built for: it runs on the host, not in the guest. */
    tscKhzTool?: ShippedFile & { host: 'linux-x64' };
  };
}

export interface UnpackedRuntime {
  kernel: string;
  initramfs: string;
  kernelHash: string;
  initHash: string;
  runtimeHash: string;
  /** x86-64 hosts: runtime/host/tsc_khz.c, the host's TSC frequency for TCG guests (host-tsc.ts). */
  tscKhzTool?: string;
}

const UNPACKED_NAMES = { kernel: 'vmlinux', initramfs: 'initramfs.cpio', tscKhzTool: 'tsc-khz' } as const;

function broken(manifest: string, what: string, cause?: unknown): GvmiTestError {
  return new GvmiTestError('setup.runtime-missing', `the guest runtime shipped in this package is damaged: ${what} (${manifest})`, {
    hint: 'reinstall gvmi-test (npm install gvmi-test), or point GVMI_TEST_KERNEL and GVMI_TEST_INITRAMFS at your own files',
    ...(cause === undefined ? {} : { cause }),
  });
}

function checkFile(manifestPath: string, name: string, file: unknown): ShippedFile {
  const f = file as Partial<ShippedFile> | undefined;
  if (!f || typeof f.path !== 'string' || typeof f.sha256 !== 'string' || typeof f.bytes !== 'number'
    || (f.encoding !== 'br' && f.encoding !== 'identity')) {
    throw broken(manifestPath, `the manifest's ${name} entry is malformed`);
  }
  // Relative and inside the runtime directory: a manifest never sends us elsewhere.
  const path = normalize(f.path);
  if (isAbsolute(f.path) || path.startsWith(`..${sep}`) || path === '..' || !/^[0-9a-f]{64}$/.test(f.sha256)) {
    throw broken(manifestPath, `the manifest's ${name} entry is not a relative path with a sha256`);
  }
  return f as ShippedFile;
}

/** The manifest under `runtimeDir`, checked; undefined when there is none (not a package). */
export async function readShippedManifest(runtimeDir: string): Promise<ShippedRuntimeManifest | undefined> {
  const manifestPath = join(runtimeDir, SHIPPED_MANIFEST);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw broken(manifestPath, 'the manifest cannot be read', error);
  }
  let parsed: ShippedRuntimeManifest;
  try {
    parsed = JSON.parse(text) as ShippedRuntimeManifest;
  } catch (error) {
    throw broken(manifestPath, 'the manifest is not JSON', error);
  }
  if (parsed.format !== 1 || typeof parsed.kernelHash !== 'string' || typeof parsed.initHash !== 'string' || typeof parsed.runtimeHash !== 'string') {
    throw broken(manifestPath, 'the manifest is not format 1');
  }
  checkFile(manifestPath, 'kernel', parsed.files?.kernel);
  checkFile(manifestPath, 'initramfs', parsed.files?.initramfs);
  if (parsed.files.tscKhzTool) checkFile(manifestPath, 'tscKhzTool', parsed.files.tscKhzTool);
  return parsed;
}

/** Counts and hashes what passes through. */
function measuring(): Transform & { sha256: () => string; bytes: () => number } {
  const hash = createHash('sha256');
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return Object.assign(t, { sha256: () => hash.digest('hex'), bytes: () => bytes });
}

/** Tags the decompressor's own errors, so they read as a damaged file, not an unwritable cache. */
function markUndecodable(error: Error): void {
  (error as { undecodable?: boolean }).undecodable = true;
}

/** One shipped file unpacked into the cache (once; later calls find it by its size). */
async function unpack(runtimeDir: string, file: ShippedFile, name: string, executable: boolean, cache: string): Promise<string> {
  const target = join(cache, 'runtime-shipped', file.sha256.slice(0, 32), name);
  const existing = await stat(target).catch(() => undefined);
  // Written under another name, verified, then renamed: a file at `target` is a whole, verified one.
  if (existing?.isFile() && existing.size === file.bytes) return target;
  const source = join(runtimeDir, file.path);
  const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const measure = measuring();
  try {
    await mkdir(dirname(target), { recursive: true });
    const output = createWriteStream(temporary, { mode: executable ? 0o755 : 0o644 });
    if (file.encoding === 'br') {
      await pipeline(createReadStream(source), createBrotliDecompress().on('error', markUndecodable), measure, output);
    } else {
      await pipeline(createReadStream(source), measure, output);
    }
    if (measure.bytes() !== file.bytes || measure.sha256() !== file.sha256) {
      throw broken(join(runtimeDir, SHIPPED_MANIFEST), `${file.path} does not unpack to the sha256 the manifest gives`);
    }
    if (executable) await chmod(temporary, 0o755);
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    if (error instanceof GvmiTestError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !(await stat(source).catch(() => undefined))) throw broken(join(runtimeDir, SHIPPED_MANIFEST), `${file.path} is missing`, error);
    if ((error as { undecodable?: boolean }).undecodable) {
      throw broken(join(runtimeDir, SHIPPED_MANIFEST), `${file.path} does not decompress`, error);
    }
    throw new GvmiTestError('setup.runtime-missing', `cannot unpack the shipped guest runtime into ${dirname(target)}: ${(error as Error).message}`, {
      hint: 'the cache directory must be writable: set GVMI_TEST_CACHE (or XDG_CACHE_HOME) to a directory you own',
      cause: error,
    });
  }
  return target;
}

/**
 * The runtime under `runtimeDir` (a package's dist/runtime), unpacked into `cache`; undefined
 * when there is no manifest. The tool is unpacked only on the host it was built for.
 */
export async function unpackShippedRuntime(runtimeDir: string, cache: string, host = `${process.platform}-${process.arch}`): Promise<UnpackedRuntime | undefined> {
  const manifest = await readShippedManifest(runtimeDir);
  if (!manifest) return undefined;
  const { kernel, initramfs, tscKhzTool } = manifest.files;
  const [kernelPath, initramfsPath, toolPath] = await Promise.all([
    unpack(runtimeDir, kernel, UNPACKED_NAMES.kernel, false, cache),
    unpack(runtimeDir, initramfs, UNPACKED_NAMES.initramfs, false, cache),
    tscKhzTool && tscKhzTool.host === host ? unpack(runtimeDir, tscKhzTool, UNPACKED_NAMES.tscKhzTool, true, cache) : undefined,
  ]);
  return {
    kernel: kernelPath, initramfs: initramfsPath,
    kernelHash: manifest.kernelHash, initHash: manifest.initHash, runtimeHash: manifest.runtimeHash,
    ...(toolPath ? { tscKhzTool: toolPath } : {}),
  };
}
