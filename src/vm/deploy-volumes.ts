/**
 * Volumes a requestor asks for at deploy (ya-runtime-vm 0.5, reference §9; deploy.rs:60-120,
 * vmrt.rs:136-168): `host` (a 9p host directory, at a path the image may not declare, never `/`),
 * `ram` (a tmpfs of a given size; at `/` it holds the overlay's writable layer) and `storage` (a
 * qcow2 disk the guest formats as ext2, mounted with `errors=`: a volume that can run out of
 * space). ya-runtime-vm 0.4 has none of this: a VM there has exactly the image's volumes, so the
 * 0.4 profile refuses each, and a `--volume` binding at a path the image did not declare with it.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GvmiTestError } from '../errors.js';
import { normaliseVolumePath } from '../image/container-config.js';
import type { BootVolume } from '../qemu/qemu-args.js';
import type { RuntimeProfile } from '../runtime-profile.js';

export const STORAGE_ERROR_MODES = ['continue', 'remount-ro', 'panic'] as const;
export type StorageErrorMode = (typeof STORAGE_ERROR_MODES)[number];

export type DeployVolume =
  /** A host directory over 9p (a fresh temporary one, or the caller's through `volumes`). */
  | { kind: 'host' }
  /** A tmpfs of `sizeMiB` MiB in the guest's RAM; at `/`, the overlay's writable layer. */
  | { kind: 'ram'; sizeMiB: number }
  /** A disk of `sizeMiB` MiB, formatted ext2 by the guest; `errors` as ext2's (default continue). */
  | { kind: 'storage'; sizeMiB: number; errors?: StorageErrorMode };

/** What `startVm({ deployVolumes })` takes: guest path -> kind, as a Deploy's `volumes` map. */
export type DeployVolumes = Readonly<Record<string, DeployVolume>>;

/** A deploy volume as the VM has it, for reports and diagnostics. */
export interface DeployVolumeInfo {
  guestPath: string;
  kind: DeployVolume['kind'];
  sizeMiB?: number;
  errors?: StorageErrorMode;
}

export interface DeployVolumePlan {
  /** 9p volume paths besides the image's: `host` volumes and bindings where the image has none. */
  extraHostPaths: string[];
  /** Image volumes a ram or storage volume replaces (upstream drops their 9p export). */
  replacedImageVolumes: string[];
  /** Ram and storage volumes in upstream's numbering; storage disks not made yet (`disk` empty). */
  bootVolumes: BootVolume[];
  info: DeployVolumeInfo[];
}

/** x86's COMMAND_LINE_SIZE is 2048: leave room for the rest of the kernel command line. */
const MAX_BOOT_PARAMETER_CHARS = 1200;
const MIB = 1024 * 1024;

function badVolume(message: string, hint?: string): GvmiTestError {
  return new GvmiTestError('deploy.bad-volume', message, hint ? { hint } : {});
}

function deployPath(path: string): string {
  const normalised = normaliseVolumePath(path, 'deploy.bad-volume');
  // The path travels on the kernel command line (vol-N-path=), which splits at white space.
  if (/[\s"\\]|[\u0000-\u001f\u007f]/.test(normalised)) {
    throw badVolume(`deploy volume ${JSON.stringify(path)}: a path the kernel command line cannot carry (white space, quotes, backslashes, control characters)`);
  }
  return normalised;
}

function sizeOf(path: string, v: { sizeMiB: number }): number {
  if (!Number.isInteger(v.sizeMiB) || v.sizeMiB < 1) {
    throw badVolume(`deploy volume ${path}: size must be a whole number of MiB, at least 1 (got ${JSON.stringify(v.sizeMiB)})`);
  }
  return v.sizeMiB;
}

const REFUSED_ON_04 = 'ya-runtime-vm 0.4 has no deploy volumes: a VM there has exactly the image\'s VOLUMEs (ram and storage volumes and extra host volumes came with 0.5)';

/**
 * Checks and lays out a requestor's deploy volumes and the caller's bindings (guest path -> host
 * directory) against the image's volumes, as a provider of `runtime` would take them. Throws
 * `deploy.unsupported-by-runtime` under 0.4 for any deploy volume or a binding where the image
 * declares no VOLUME, and `deploy.bad-volume` for what a 0.5 provider refuses or cannot carry.
 */
export function planDeployVolumes(
  runtime: RuntimeProfile,
  imageVolumes: readonly string[],
  deploy: DeployVolumes = {},
  boundPaths: readonly string[] = [],
): DeployVolumePlan {
  const declared = new Set(imageVolumes.map((v) => normaliseVolumePath(v)));
  const entries = Object.entries(deploy).map(([path, v]) => [deployPath(path), v] as const);
  const bound = boundPaths.map((p) => normaliseVolumePath(p));
  const undeclaredBindings = bound.filter((p) => !declared.has(p));
  if (runtime === '0.4') {
    if (entries.length > 0) {
      throw new GvmiTestError('deploy.unsupported-by-runtime', `deploy volumes (${entries.map(([p, v]) => `${v.kind} ${p}`).join(', ')}) under runtime 0.4: ${REFUSED_ON_04}`, {
        hint: 'use --runtime-version 0.5 (runtimeVersion: \'0.5\') to test them, or declare the paths as VOLUMEs in the image',
      });
    }
    if (undeclaredBindings.length > 0) {
      throw new GvmiTestError('deploy.unsupported-by-runtime', `a volume at ${undeclaredBindings.join(', ')}, which the image does not declare as a VOLUME, under runtime 0.4: ${REFUSED_ON_04}`, {
        hint: declared.size > 0
          ? `bind one of the image's volumes (${[...declared].join(', ')}), add VOLUME ${undeclaredBindings.join(' ')} to the image, or use --runtime-version 0.5, where a requestor can add a host volume at deploy`
          : `add VOLUME ${undeclaredBindings.join(' ')} to the image (gvmi-test build --volume ${undeclaredBindings[0]}), or use --runtime-version 0.5, where a requestor can add a host volume at deploy`,
      });
    }
  }
  const seen = new Set<string>();
  for (const [path] of entries) {
    if (seen.has(path)) throw badVolume(`deploy volume ${path} is given twice`);
    seen.add(path);
  }
  const extraHostPaths = new Set<string>();
  const replacedImageVolumes: string[] = [];
  const sized: { path: string; v: Exclude<DeployVolume, { kind: 'host' }>; sizeMiB: number }[] = [];
  const info: DeployVolumeInfo[] = [];
  for (const [path, v] of entries) {
    if (v.kind === 'host') {
      // deploy.rs:76-86: "Volume of type `host` specified for path=\"/\"".
      if (path === '/') throw badVolume('a host volume at / : a provider refuses it (Volume of type `host` specified for path="/")', 'use a ram or storage volume at / to size the space outside volumes');
      if (!declared.has(path)) extraHostPaths.add(path);
      info.push({ guestPath: path, kind: 'host' });
    } else if (v.kind === 'ram' || v.kind === 'storage') {
      const sizeMiB = sizeOf(path, v);
      if (v.kind === 'storage' && v.errors !== undefined && !(STORAGE_ERROR_MODES as readonly string[]).includes(v.errors)) {
        throw badVolume(`storage volume ${path}: errors=${String(v.errors)} is not one of ${STORAGE_ERROR_MODES.join(', ')}`);
      }
      if (bound.includes(path)) {
        throw badVolume(`${path} is a ${v.kind} volume of the deploy and also bound to a host directory (--volume)`, 'a path is one volume: drop the binding, or make it a host volume');
      }
      // deploy.rs:94-110: the image's 9p volume at that path is dropped for this one.
      if (declared.has(path)) replacedImageVolumes.push(path);
      sized.push({ path, v, sizeMiB });
      info.push({ guestPath: path, kind: v.kind, sizeMiB, ...(v.kind === 'storage' ? { errors: v.errors ?? 'continue' } : {}) });
    } else {
      throw badVolume(`deploy volume ${path}: unknown kind ${JSON.stringify((v as { kind: unknown }).kind)} (host, ram or storage)`);
    }
  }
  if (runtime !== '0.4') for (const p of undeclaredBindings) extraHostPaths.add(p);
  // Upstream numbers them in its HashMap's order; path order keeps a configuration's kernel
  // command line (and so its snapshot key) the same from run to run.
  sized.sort((a, b) => a.path.localeCompare(b.path));
  const bootVolumes: BootVolume[] = sized.map(({ path, v, sizeMiB }, index) => v.kind === 'ram'
    ? { index, kind: 'ram', guestPath: path, sizeBytes: sizeMiB * MIB }
    : { index, kind: 'storage', guestPath: path, sizeBytes: sizeMiB * MIB, errors: v.errors ?? 'continue', disk: '' });
  const parameterChars = bootVolumes.reduce((n, v) => n + 2 * `vol-${v.index}-xxxxxx=`.length + v.guestPath.length + 20, 0);
  if (parameterChars > MAX_BOOT_PARAMETER_CHARS) {
    throw badVolume(`${bootVolumes.length} ram and storage volumes do not fit on the kernel command line (2048 bytes), which is how a provider passes them`, 'use fewer or shorter paths');
  }
  return { extraHostPaths: [...extraHostPaths].sort(), replacedImageVolumes, bootVolumes, info: info.sort((a, b) => a.guestPath.localeCompare(b.guestPath)) };
}

const execFileAsync = promisify(execFile);

/**
 * Makes each storage volume's disk in `dir`: an empty qcow2 of the volume's size (sparse: it takes
 * host space only as the guest writes), which the guest formats at boot. Upstream writes its own
 * minimal qcow2 (qcow2_min); qemu-img makes the same kind of image.
 */
export async function createStorageDisks(bootVolumes: readonly BootVolume[], dir: string): Promise<BootVolume[]> {
  const made: BootVolume[] = [];
  for (const v of bootVolumes) {
    if (v.kind !== 'storage') {
      made.push(v);
      continue;
    }
    const disk = join(dir, `vol-${v.index}.qcow2`);
    try {
      await execFileAsync(process.env['GVMI_TEST_QEMU_IMG'] ?? 'qemu-img', ['create', '-q', '-f', 'qcow2', disk, String(v.sizeBytes)]);
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') {
        throw new GvmiTestError('setup.tool-missing', 'qemu-img not found (it makes the disk of a storage volume)', { hint: 'install qemu-utils (make deps)' });
      }
      throw new GvmiTestError('vm.boot-failed', `qemu-img could not make the disk of storage volume ${v.guestPath}: ${(e.stderr ?? e.message).trim()}`, { cause: error });
    }
    made.push({ ...v, disk });
  }
  return made;
}
