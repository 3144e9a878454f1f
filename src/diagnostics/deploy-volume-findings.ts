/**
 * Out of space in a requestor's deploy volumes (runtime 0.5, reference §9): a `ram` volume is a
 * tmpfs of the size the deploy asked for, a `storage` volume an ext2 disk of its size; either can
 * fill up, and a storage volume can also have been remounted read-only by its `errors=remount-ro`
 * after a filesystem error. The finding names the kind and the path that filled, and the fix that
 * fits the kind. Pure functions over what the VM's STATS reported.
 */
import { formatBytes } from '../format-bytes.js';
import type { Finding } from './finding.js';

/** One ram or storage volume as STATS measured it (the guest's statfs of its mount). */
export interface DeployVolumeState {
  guestPath: string;
  kind: 'ram' | 'storage';
  totalBytes: number;
  usedBytes: number;
  /** Mounted read-only now: a storage volume remounted after an error (errors=remount-ro). */
  readOnly: boolean;
  /** A storage volume's errors= mode, when known. */
  errors?: string;
}

/** As the overlay's: what is left cannot hold even a small file's worth of blocks. */
const NEARLY_FULL_RATIO = 0.95;

export function deployVolumeFull(v: DeployVolumeState): boolean {
  return v.totalBytes > 0 && v.usedBytes >= v.totalBytes * NEARLY_FULL_RATIO;
}

function describe(v: DeployVolumeState): string {
  return v.kind === 'ram'
    ? `the ram volume ${v.guestPath} (a tmpfs of ${formatBytes(v.totalBytes)} in the VM's memory, the size the deploy asked for)`
    : `the storage volume ${v.guestPath} (an ext2 disk of ${formatBytes(v.totalBytes)}, the size the deploy asked for)`;
}

function fixFor(v: DeployVolumeState, hostVolume: string | undefined): string {
  const elsewhere = hostVolume ? `, or write large files to a host volume such as ${hostVolume} (no size limit but the provider's disk)` : '';
  return v.kind === 'ram'
    ? `ask for a bigger ram volume (--ram-volume ${v.guestPath}:SIZE, deployVolumes: { '${v.guestPath}': { kind: 'ram', sizeMiB } }; it takes the VM's memory), or a storage volume there (--storage-volume ${v.guestPath}:SIZE: disk, not RAM)${elsewhere}`
    : `ask for a bigger storage volume (--storage-volume ${v.guestPath}:SIZE, deployVolumes: { '${v.guestPath}': { kind: 'storage', sizeMiB } })${elsewhere}, or delete what the job no longer needs as it goes`;
}

/**
 * A finding per deploy volume that is (nearly) full or was remounted read-only. `hostVolume` is a
 * 9p volume to suggest instead, when the VM has one.
 */
export function deployVolumeFindings(volumes: readonly DeployVolumeState[], hostVolume?: string): Finding[] {
  const findings: Finding[] = [];
  for (const v of volumes) {
    const details = { guestPath: v.guestPath, kind: v.kind, totalBytes: v.totalBytes, usedBytes: v.usedBytes, readOnly: v.readOnly, ...(v.errors ? { errors: v.errors } : {}) };
    if (v.kind === 'storage' && v.readOnly) {
      findings.push({
        code: 'deploy-volume-read-only',
        severity: 'error',
        message: `${describe(v)} is read-only now: its ext2 filesystem hit an error and errors=${v.errors ?? 'remount-ro'} remounted it read-only, so every later write there fails (EROFS)`,
        fix: 'the guest console (vm.console()) has the kernel\'s EXT2-fs error line; a provider\'s VM behaves the same, so find what damaged the filesystem (writing to its block device?), or use errors=continue',
        paths: [v.guestPath],
        details,
      });
    } else if (deployVolumeFull(v)) {
      findings.push({
        code: 'deploy-volume-full',
        severity: 'error',
        message: `out of space: ${describe(v)} is full; ${formatBytes(v.usedBytes, 1)} of ${formatBytes(v.totalBytes)} used`,
        fix: fixFor(v, hostVolume),
        paths: [v.guestPath],
        details,
      });
    }
  }
  return findings;
}
