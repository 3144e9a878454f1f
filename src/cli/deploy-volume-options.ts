/**
 * The command line's deploy volumes (ya-runtime-vm 0.5; src/vm/deploy-volumes.ts):
 * `--host-volume PATH`, `--ram-volume PATH:SIZE`, `--storage-volume PATH:SIZE[:ERRORS]`.
 */
import { GvmiTestError } from '../errors.js';
import { STORAGE_ERROR_MODES, type DeployVolume, type StorageErrorMode } from '../vm/deploy-volumes.js';

/** `64` (MiB), `64M`, `64MiB`, `1G`, `1GiB`: a whole number of MiB. */
export function parseVolumeSize(value: string, what: string): number {
  const m = /^(\d+)\s*(m|mi|mib|mb|g|gi|gib|gb)?$/i.exec(value.trim());
  const n = m ? Number(m[1]) * (m[2] && /^g/i.test(m[2]) ? 1024 : 1) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new GvmiTestError('usage', `${what}: size ${JSON.stringify(value)} must be a whole number of MiB (64, 64M, 1G), at least 1`);
  }
  return n;
}

/** PATH:REST, splitting at the first ':' after the path (a path holds no ':' here). */
function split(spec: string, what: string, form: string): [string, string[]] {
  const [path, ...rest] = spec.split(':');
  if (!path || rest.length === 0) throw new GvmiTestError('usage', `${what} ${JSON.stringify(spec)} must look like ${form}`);
  return [path, rest];
}

export function parseRamVolume(spec: string): [string, DeployVolume] {
  const [path, rest] = split(spec, '--ram-volume', 'PATH:SIZE (e.g. /data:64M)');
  if (rest.length !== 1) throw new GvmiTestError('usage', `--ram-volume ${JSON.stringify(spec)} must look like PATH:SIZE (e.g. /data:64M)`);
  return [path, { kind: 'ram', sizeMiB: parseVolumeSize(rest[0]!, `--ram-volume ${path}`) }];
}

export function parseStorageVolume(spec: string): [string, DeployVolume] {
  const form = 'PATH:SIZE[:continue|remount-ro|panic] (e.g. /store:1G:remount-ro)';
  const [path, rest] = split(spec, '--storage-volume', form);
  if (rest.length > 2) throw new GvmiTestError('usage', `--storage-volume ${JSON.stringify(spec)} must look like ${form}`);
  const errors = rest[1];
  if (errors !== undefined && !(STORAGE_ERROR_MODES as readonly string[]).includes(errors)) {
    throw new GvmiTestError('usage', `--storage-volume ${path}: errors mode ${JSON.stringify(errors)} is not one of ${STORAGE_ERROR_MODES.join(', ')}`);
  }
  return [path, { kind: 'storage', sizeMiB: parseVolumeSize(rest[0]!, `--storage-volume ${path}`), ...(errors ? { errors: errors as StorageErrorMode } : {}) }];
}

export interface DeployVolumeFlags {
  hostVolume?: string[];
  ramVolume?: string[];
  storageVolume?: string[];
}

/** The deploy volumes the flags ask for; a path given twice is refused. */
export function deployVolumesFromFlags(flags: DeployVolumeFlags): Record<string, DeployVolume> {
  const entries: [string, DeployVolume][] = [
    ...(flags.hostVolume ?? []).map((p): [string, DeployVolume] => [p, { kind: 'host' }]),
    ...(flags.ramVolume ?? []).map(parseRamVolume),
    ...(flags.storageVolume ?? []).map(parseStorageVolume),
  ];
  const volumes: Record<string, DeployVolume> = {};
  for (const [path, v] of entries) {
    if (path in volumes) throw new GvmiTestError('usage', `deploy volume ${path} is given twice`);
    volumes[path] = v;
  }
  return volumes;
}
