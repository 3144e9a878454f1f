/**
 * Docker's ContainerConfig as a .gvmi carries it (PascalCase keys, reference §1), and the
 * normalised view the rest of gvmi-test reads.
 */
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

/** Volume paths normalised (no trailing slash), sorted, unique. */
export function normaliseVolumePath(path: string): string {
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
    volumes: [...new Set(volumes.map(normaliseVolumePath))].sort(),
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
