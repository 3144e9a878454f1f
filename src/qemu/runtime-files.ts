/**
 * Where the guest kernel and initramfs are, and QEMU itself.
 *
 * The runtime is looked up in this order, the first that exists winning:
 *   1. an override: `GVMI_TEST_RUNTIME` (a runtime.json, as runtime/build.sh writes), and/or
 *      `GVMI_TEST_KERNEL` + `GVMI_TEST_INITRAMFS` (your own files; each replaces its part of the
 *      runtime found otherwise);
 *   2. a checkout's build: runtime/.build/runtime.json, written by `make runtime`;
 *   3. the runtime an installed package ships (dist/runtime, shipped-runtime.ts).
 * Hashes never depend on where the files are: a build's come from its inputs' contents, a
 * package's and an override's from the files' own contents.
 */
import { access, readFile, stat } from 'node:fs/promises';
import { constants, createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { delimiter, dirname, join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { memoPath, readMemo, writeMemo } from '../memo.js';
import { GvmiTestError } from '../errors.js';
import { cacheDir } from '../cache-dir.js';
import { installToolsCommand, isCheckout, packageRoot, restoreRuntimeCommand } from './package-layout.js';
import { SHIPPED_RUNTIME_DIR, unpackShippedRuntime, type UnpackedRuntime } from './shipped-runtime.js';

export { packageRoot } from './package-layout.js';

/** The guest runtime's files, wherever they were found (the shape an unpacked package gives). */
export interface RuntimeFiles extends UnpackedRuntime {
  /** Where it was found: an override, a checkout's build, or the installed package. */
  source?: RuntimeSource;
}

export type RuntimeSource = 'override' | 'checkout' | 'package';

/** What the lookup depends on, injectable for tests. */
export interface RuntimeLookup {
  root?: string;
  env?: NodeJS.ProcessEnv;
  cache?: string;
}

/** A checkout's build manifest, relative to the package root. */
export const CHECKOUT_MANIFEST = join('runtime', '.build', 'runtime.json');

const contentHashes = new Map<string, Promise<string>>();

/** The first 16 hex digits of a file's sha256, remembered per (path, size, mtime) in this process. */
export async function fileContentHash(path: string): Promise<string> {
  const st = await stat(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
  let hash = contentHashes.get(key);
  if (!hash) {
    hash = new Promise<string>((resolveHash, reject) => {
      const h = createHash('sha256');
      createReadStream(path).on('data', (d) => h.update(d)).on('error', reject).on('end', () => resolveHash(h.digest('hex').slice(0, 16)));
    });
    contentHashes.set(key, hash);
    hash.catch(() => contentHashes.delete(key));
  }
  return hash;
}

async function readable(file: string, what: string, hint: string): Promise<void> {
  try {
    await access(file, constants.R_OK);
  } catch (cause) {
    throw new GvmiTestError('setup.runtime-missing', `${what} ${file} is missing or unreadable`, { hint, cause });
  }
}

/** A runtime.json: absolute paths, or paths relative to the file; hashes computed when absent. */
async function readRuntimeJson(manifest: string, source: RuntimeSource, hint: string): Promise<RuntimeFiles> {
  let parsed: Partial<RuntimeFiles>;
  try {
    parsed = JSON.parse(await readFile(manifest, 'utf8')) as Partial<RuntimeFiles>;
  } catch (cause) {
    throw new GvmiTestError('setup.runtime-missing', `the guest runtime manifest ${manifest} is missing or not JSON`, { hint, cause });
  }
  if (typeof parsed.kernel !== 'string' || typeof parsed.initramfs !== 'string') {
    throw new GvmiTestError('setup.runtime-missing', `the guest runtime manifest ${manifest} names no kernel and initramfs`, { hint });
  }
  const base = dirname(manifest);
  const kernel = resolve(base, parsed.kernel);
  const initramfs = resolve(base, parsed.initramfs);
  await readable(kernel, 'the guest kernel', hint);
  await readable(initramfs, 'the guest initramfs', hint);
  const kernelHash = parsed.kernelHash ?? await fileContentHash(kernel);
  const initHash = parsed.initHash ?? await fileContentHash(initramfs);
  return {
    kernel, initramfs, kernelHash, initHash,
    runtimeHash: parsed.kernelHash && parsed.initHash && parsed.runtimeHash ? parsed.runtimeHash : `${kernelHash}-${initHash}`,
    ...(parsed.tscKhzTool ? { tscKhzTool: resolve(base, parsed.tscKhzTool) } : {}),
    source,
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** The runtime without GVMI_TEST_KERNEL/GVMI_TEST_INITRAMFS applied; undefined when there is none. */
async function baseRuntime(root: string, env: NodeJS.ProcessEnv, cache: string): Promise<RuntimeFiles | undefined> {
  const explicit = env['GVMI_TEST_RUNTIME'];
  if (explicit) {
    return readRuntimeJson(resolve(explicit), 'override',
      `GVMI_TEST_RUNTIME must name a runtime.json as runtime/build.sh writes it; unset it to use the default runtime (${restoreRuntimeCommand(isCheckout(root))})`);
  }
  const checkout = join(root, CHECKOUT_MANIFEST);
  if (await exists(checkout)) return readRuntimeJson(checkout, 'checkout', `${restoreRuntimeCommand(isCheckout(root))} (the cache may have been cleared)`);
  const shipped = await unpackShippedRuntime(join(root, SHIPPED_RUNTIME_DIR), cache);
  return shipped && { ...shipped, source: 'package' };
}

export async function findRuntime(lookup: RuntimeLookup = {}): Promise<RuntimeFiles> {
  const root = lookup.root ?? packageRoot;
  const env = lookup.env ?? process.env;
  const customKernel = env['GVMI_TEST_KERNEL'];
  const customInitramfs = env['GVMI_TEST_INITRAMFS'];
  // Both given: nothing else is needed, and a broken default runtime does not matter.
  const base = customKernel && customInitramfs ? undefined : await baseRuntime(root, env, lookup.cache ?? cacheDir());
  if (!customKernel && !customInitramfs) {
    if (base) return base;
    throw new GvmiTestError('setup.runtime-missing', `the guest runtime is not built (no ${join(root, CHECKOUT_MANIFEST)}, no ${join(root, SHIPPED_RUNTIME_DIR)})`, {
      hint: restoreRuntimeCommand(isCheckout(root)),
    });
  }
  const hint = 'GVMI_TEST_KERNEL and GVMI_TEST_INITRAMFS must name readable files (an uncompressed x86-64 vmlinux with PVH, and a newc cpio holding the init)';
  const kernel = customKernel ? resolve(customKernel) : base?.kernel;
  const initramfs = customInitramfs ? resolve(customInitramfs) : base?.initramfs;
  if (!kernel || !initramfs) {
    throw new GvmiTestError('setup.runtime-missing', `${customKernel ? 'GVMI_TEST_KERNEL' : 'GVMI_TEST_INITRAMFS'} is set, but there is no default runtime for the other part`, {
      hint: `set both GVMI_TEST_KERNEL and GVMI_TEST_INITRAMFS, or ${restoreRuntimeCommand(isCheckout(root))}`,
    });
  }
  if (customKernel) await readable(kernel, 'GVMI_TEST_KERNEL:', hint);
  if (customInitramfs) await readable(initramfs, 'GVMI_TEST_INITRAMFS:', hint);
  const kernelHash = customKernel ? await fileContentHash(kernel) : base!.kernelHash;
  const initHash = customInitramfs ? await fileContentHash(initramfs) : base!.initHash;
  return {
    kernel, initramfs, kernelHash, initHash, runtimeHash: `${kernelHash}-${initHash}`,
    ...(base?.tscKhzTool ? { tscKhzTool: base.tscKhzTool } : {}),
    source: 'override',
  };
}

async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch { /* next */ }
  }
  return undefined;
}

export async function findQemu(): Promise<string> {
  const explicit = process.env['GVMI_TEST_QEMU'];
  if (explicit) {
    try {
      await access(explicit, constants.X_OK);
      return explicit;
    } catch {
      throw new GvmiTestError('setup.qemu-missing', `GVMI_TEST_QEMU=${explicit} is not an executable file`, { hint: 'unset it to use qemu-system-x86_64 from PATH' });
    }
  }
  const found = await onPath('qemu-system-x86_64');
  if (!found) {
    throw new GvmiTestError('setup.qemu-missing', 'qemu-system-x86_64 not found on PATH', {
      hint: `install it: ${installToolsCommand()}`,
    });
  }
  return found;
}

let sandboxSupport: Promise<boolean> | undefined;

/**
 * Whether this QEMU was built with seccomp (`-sandbox`): not every build is. Asking spawns QEMU,
 * which a cold start should not pay for every time, so the answer is remembered per QEMU binary.
 */
export function qemuSupportsSandbox(qemu: string): Promise<boolean> {
  sandboxSupport ??= (async () => {
    const st = await stat(qemu).catch(() => undefined);
    const memo = st && memoPath('qemu-probes', [qemu, st.size, st.mtimeMs, st.ino]);
    const remembered = memo ? await readMemo(memo) : undefined;
    if (remembered === 'sandbox' || remembered === 'no-sandbox') return remembered === 'sandbox';
    const supported = await new Promise<boolean>((resolve) => {
      execFile(qemu, ['-help'], { timeout: 5000 }, (_error, stdout) => resolve(/^-sandbox /m.test(String(stdout))));
    });
    if (memo) await writeMemo(memo, supported ? 'sandbox' : 'no-sandbox');
    return supported;
  })();
  return sandboxSupport;
}
