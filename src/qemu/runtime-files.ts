/** Where the guest kernel and initramfs built by `make runtime` are, and QEMU itself. */
import { access, readFile, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { memoPath, readMemo, writeMemo } from '../memo.js';
import { GvmiTestError } from '../errors.js';

export interface RuntimeFiles {
  kernel: string;
  initramfs: string;
  kernelHash: string;
  initHash: string;
  runtimeHash: string;
  /** x86-64 hosts: runtime/host/tsc_khz.c, the host's TSC frequency for TCG guests (host-tsc.ts). */
  tscKhzTool?: string;
}

/** The package root: dist/qemu/x.js and src/qemu/x.ts both sit two levels below it. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function runtimeManifestPath(): string {
  return process.env['GVMI_TEST_RUNTIME'] ?? join(packageRoot, 'runtime', '.build', 'runtime.json');
}

export async function findRuntime(): Promise<RuntimeFiles> {
  const manifest = runtimeManifestPath();
  let parsed: RuntimeFiles;
  try {
    parsed = JSON.parse(await readFile(manifest, 'utf8')) as RuntimeFiles;
  } catch (cause) {
    throw new GvmiTestError('setup.runtime-missing', `the guest runtime is not built (${manifest} missing)`, {
      hint: 'run `make runtime` in the gvmi-test checkout', cause,
    });
  }
  for (const file of [parsed.kernel, parsed.initramfs]) {
    try {
      await access(file, constants.R_OK);
    } catch (cause) {
      throw new GvmiTestError('setup.runtime-missing', `runtime file ${file} is missing (cache cleared?)`, { hint: 'run `make runtime`', cause });
    }
  }
  return parsed;
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
      hint: 'install it with `make deps` (Debian: apt-get install qemu-system-x86)',
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
