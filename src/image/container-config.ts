/**
 * Docker's ContainerConfig as a .gvmi carries it (PascalCase keys, reference §1), and the
 * normalised view the rest of gvmi-test reads.
 */
import { GvmiTestError, type ErrorCode } from '../errors.js';

export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  Image?: string;
  Volumes?: Record<string, object> | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  [key: string]: unknown;
}

export interface ImageMetadata {
  env: string[];
  cmd: string[];
  entrypoint: string[];
  volumes: string[];
  workingDir: string;
  user: string;
  labels: Record<string, string>;
  imageId: string;
  hostname: string;
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * Why `path` cannot be a volume, or undefined when it can. A provider's init refuses a
 * MOUNT_VOLUME path that is relative or has a `.` or `..` component (EINVAL), and the host side
 * places volume content at `<dir>/<volume path>`: such a path would climb out of `<dir>`.
 */
export function volumePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must be an absolute path';
  if (path.includes('\0')) return 'must not contain a NUL byte';
  if (path.split('/').some((c) => c === '.' || c === '..')) return "must not contain '.' or '..' components (a provider refuses to mount it)";
  return undefined;
}

/**
 * A volume path normalised (repeated and trailing slashes dropped). Throws `code` for a path no
 * provider would mount (volumePathProblem): when reading an image, building one, or from a caller.
 */
export function normaliseVolumePath(path: string, code: ErrorCode = 'usage'): string {
  const problem = volumePathProblem(path);
  if (problem) {
    throw new GvmiTestError(code, `volume ${JSON.stringify(path)} ${problem}`, {
      hint: code.startsWith('image.') ? 'the image declares an unusable VOLUME: rebuild it with plain absolute volume paths' : 'give a plain absolute path such as /golem/input',
    });
  }
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed.replace(/\/+/g, '/');
}

export function metadataOf(config: ContainerConfig): ImageMetadata {
  const volumes = config.Volumes && typeof config.Volumes === 'object' ? Object.keys(config.Volumes) : [];
  const labels: Record<string, string> = {};
  if (config.Labels && typeof config.Labels === 'object') {
    for (const [k, v] of Object.entries(config.Labels)) if (typeof v === 'string') labels[k] = v;
  }
  return {
    env: stringArray(config.Env),
    cmd: stringArray(config.Cmd),
    entrypoint: stringArray(config.Entrypoint),
    volumes: [...new Set(volumes.map((v) => normaliseVolumePath(v, 'image.bad-volume')))].sort(),
    workingDir: typeof config.WorkingDir === 'string' && config.WorkingDir !== '' ? config.WorkingDir : '/',
    user: typeof config.User === 'string' ? config.User : '',
    labels,
    imageId: typeof config.Image === 'string' ? config.Image : '',
    hostname: typeof config.Hostname === 'string' ? config.Hostname : '',
  };
}

/** The value of `name` in a `K=V` list, last one winning (as execve's environment does). */
export function envValue(env: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (const entry of env) if (entry.startsWith(`${name}=`)) found = entry.slice(name.length + 1);
  return found;
}
