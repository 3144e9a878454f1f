/**
 * Reading a container image without a Docker engine: a `docker save` tarball or an OCI image
 * layout, as a directory or a tar. Gives the image config and the layer files, in order.
 */
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readFile, stat, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import { GvmiTestError } from '../errors.js';
import type { ContainerConfig } from './container-config.js';
import type { ExpansionBudget } from './expansion-budget.js';
import { feed, normaliseEntryName, writeEntry } from './rootfs-from-layers.js';
import { resolveInRoot } from './scoped-path.js';

export interface ImageArchive {
  format: 'docker-save' | 'oci';
  /** The image config's `config` object (Env, Cmd, Volumes, …). */
  config: ContainerConfig;
  /** sha256 of the image config blob: the image id. */
  imageId: string;
  architecture: string;
  /** Layer files (tar, maybe gzip), bottom first. */
  layers: string[];
}

interface OciDescriptor {
  mediaType?: string;
  digest?: string;
  platform?: { architecture?: string; os?: string };
}

export async function isArchiveDirectory(dir: string): Promise<boolean> {
  const has = async (name: string): Promise<boolean> => (await stat(join(dir, name)).catch(() => undefined)) !== undefined;
  if (await has('oci-layout')) return true;
  // A docker-save tree has manifest.json next to layer blobs, and no root filesystem.
  return (await has('manifest.json')) && !(await has('bin')) && !(await has('etc')) && !(await has('usr'));
}

/**
 * Unpacks the outer tar of a saved image into `into` (layer blobs stay packed). With a budget,
 * its bytes count towards what the build may write.
 */
export async function unpackOuterTar(archive: string, into: string, budget?: ExpansionBudget): Promise<void> {
  const extract = tar.extract();
  let entries = 0;
  let current = Promise.resolve();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      entries++;
      stream.on('error', () => {}); // surfaced through the extractor; never unhandled
      const handle = async (): Promise<void> => {
        budget?.declare(header.size ?? 0, `archive entry ${JSON.stringify(header.name)}`);
        const rel = normaliseEntryName(header.name);
        // Resolved inside `into`: an archive's own symlinks must not lead a later entry outside.
        const parts = rel.split('/');
        const base = parts.pop() ?? '';
        const parent = await resolveInRoot(into, parts.join('/'), true);
        await mkdir(parent, { recursive: true });
        const target = base === '' ? into : join(parent, base);
        const existing = await lstat(target).catch(() => undefined);
        if (existing && !existing.isDirectory()) await unlink(target);
        if (header.type === 'directory') {
          stream.resume();
          await mkdir(target, { recursive: true });
        } else if (header.type === 'file' || header.type === 'contiguous-file') {
          await writeEntry(stream, target);
        } else if (header.type === 'symlink') {
          stream.resume();
          await symlink(header.linkname ?? '', target);
        } else {
          stream.resume();
        }
      };
      current = handle().then(() => next(), (error: unknown) => extract.destroy(error as Error));
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  const input = createReadStream(archive);
  try {
    await feed(budget ? budget.meter(input) : input, extract, done);
  } catch (error) {
    // Let the entry being written settle, so nothing is created after the caller cleans up.
    await current;
    input.destroy();
    if (error instanceof GvmiTestError) throw error;
    throw new GvmiTestError('build.unknown-archive', `${archive} is not a tar archive (docker save or OCI layout expected)`, { cause: error });
  }
  if (entries === 0) throw new GvmiTestError('build.unknown-archive', `${archive} is an empty archive`);
}

async function readJson<T>(root: string, rel: string, what: string): Promise<T> {
  const path = await resolveInRoot(root, rel, true);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new GvmiTestError('build.bad-archive', `${what} (${rel}) is missing from the image archive`, { cause });
  }
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new GvmiTestError('build.bad-archive', `${what} (${rel}) is not valid JSON`, { cause });
  }
}

function blobPath(digest: string | undefined): string {
  const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(digest ?? '');
  if (!m) throw new GvmiTestError('build.bad-archive', `bad blob digest ${JSON.stringify(digest)}`);
  return `blobs/${m[1]}/${m[2]}`;
}

async function readOci(root: string): Promise<{ configRel: string; layerRels: string[] }> {
  let index = await readJson<{ manifests?: OciDescriptor[] }>(root, 'index.json', 'OCI index');
  for (let depth = 0; depth < 4; depth++) {
    const manifests = index.manifests ?? [];
    if (manifests.length === 0) throw new GvmiTestError('build.bad-archive', 'OCI index lists no manifests');
    const chosen = manifests.find((m) => m.platform?.architecture === 'amd64' && (m.platform.os ?? 'linux') === 'linux')
      ?? manifests.find((m) => !m.platform) ?? manifests[0]!;
    const doc = await readJson<{ mediaType?: string; manifests?: OciDescriptor[]; config?: OciDescriptor; layers?: OciDescriptor[] }>(
      root, blobPath(chosen.digest), 'OCI manifest');
    if (doc.manifests) { index = doc; continue; } // a nested index
    if (!doc.config || !Array.isArray(doc.layers)) throw new GvmiTestError('build.bad-archive', 'OCI manifest without config or layers');
    return { configRel: blobPath(doc.config.digest), layerRels: doc.layers.map((l) => blobPath(l.digest)) };
  }
  throw new GvmiTestError('build.bad-archive', 'OCI indexes nested too deeply');
}

async function readDockerSave(root: string): Promise<{ configRel: string; layerRels: string[] }> {
  const manifest = await readJson<Array<{ Config?: string; Layers?: string[] }>>(root, 'manifest.json', 'docker save manifest');
  const first = Array.isArray(manifest) ? manifest[0] : undefined;
  if (!first?.Config || !Array.isArray(first.Layers)) {
    throw new GvmiTestError('build.bad-archive', 'manifest.json does not describe an image (Config, Layers)');
  }
  if (manifest.length > 1) {
    throw new GvmiTestError('build.bad-archive', `the archive holds ${manifest.length} images; save one image per archive`);
  }
  return { configRel: first.Config, layerRels: first.Layers };
}

/** Reads an unpacked archive directory. */
export async function readImageArchive(root: string): Promise<ImageArchive> {
  const isOci = (await stat(join(root, 'index.json')).catch(() => undefined)) !== undefined;
  const hasManifest = (await stat(join(root, 'manifest.json')).catch(() => undefined)) !== undefined;
  if (!isOci && !hasManifest) {
    throw new GvmiTestError('build.unknown-archive', 'neither a docker save archive (manifest.json) nor an OCI layout (index.json)');
  }
  const format = hasManifest ? 'docker-save' : 'oci';
  const { configRel, layerRels } = format === 'docker-save' ? await readDockerSave(root) : await readOci(root);
  const configPath = await resolveInRoot(root, configRel, true);
  const configBytes = await readFile(configPath).catch((cause: unknown) => {
    throw new GvmiTestError('build.bad-archive', `image config ${configRel} is missing`, { cause });
  });
  let imageConfig: { config?: ContainerConfig; architecture?: string };
  try {
    imageConfig = JSON.parse(configBytes.toString('utf8')) as typeof imageConfig;
  } catch (cause) {
    throw new GvmiTestError('build.bad-archive', `image config ${configRel} is not valid JSON`, { cause });
  }
  const layers: string[] = [];
  for (const rel of layerRels) {
    const path = await resolveInRoot(root, normaliseEntryName(rel), true);
    if (!(await stat(path).catch(() => undefined))?.isFile()) {
      throw new GvmiTestError('build.bad-archive', `layer ${rel} is missing from the archive`);
    }
    layers.push(path);
  }
  return {
    format,
    config: imageConfig.config ?? {},
    imageId: createHash('sha256').update(configBytes).digest('hex'),
    architecture: imageConfig.architecture ?? 'amd64',
    layers,
  };
}
