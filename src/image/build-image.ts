/**
 * `gvmi-test build`: a .gvmi from a root filesystem directory, a `docker save` tarball or an OCI
 * layout — no Docker engine. The output appears whole or not at all: it is written to a temporary
 * name beside the target and renamed at the end.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { appendFile, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { dir as tempDir } from 'tmp-promise';
import { GvmiTestError } from '../errors.js';
import { metadataOf, normaliseVolumePath, type ContainerConfig } from './container-config.js';
import { listSquashfs } from './squashfs-listing.js';
import { workdirFinding } from './static-findings.js';
import type { Finding } from '../diagnostics/finding.js';
import { expansionBudget, MAX_EXPAND_ENV, parseMaxExpand, type ExpansionBudget } from './expansion-budget.js';
import { encodeTrailer, readGvmi, type GvmiImage } from './gvmi-file.js';
import { isArchiveDirectory, readImageArchive, unpackOuterTar, type ImageArchive } from './image-archive.js';
import { runMksquashfs } from './mksquashfs.js';
import { RootfsBuilder } from './rootfs-from-layers.js';
import { BUILD_COMPRESSIONS, type BuildCompression } from './squashfs-superblock.js';
import { dockerInitLayerForDirectory, dockerInitLayerTar } from './docker-init-layer.js';

export interface ImageSettings {
  volumes?: string[];
  env?: string[];
  workdir?: string;
  entrypoint?: string[];
  cmd?: string[];
  labels?: Record<string, string>;
  user?: string;
}

export interface BuildOptions extends ImageSettings {
  /** A root filesystem directory, a docker-save tar, or an OCI layout (directory or tar). */
  source: string;
  output: string;
  force?: boolean;
  compression?: BuildCompression;
  /**
   * How far an archive may expand while unpacking: bytes (a number, or "8GiB") or a ratio to the
   * archive's size ("100x"). Default: GVMI_TEST_MAX_EXPAND, else 20× the archive, at least 64 MiB.
   * The scratch filesystem's free space caps it in any case.
   */
  maxExpand?: number | string;
  onProgress?: (stage: string, percent?: number) => void;
  signal?: AbortSignal;
}

export interface BuildResult {
  image: GvmiImage;
  sourceKind: 'directory' | 'docker-save' | 'oci';
  warnings: string[];
  /** Provider traps found in the built image (each is in `warnings` too, as one line). */
  findings: Finding[];
}

export const NO_VOLUME_WARNING =
  'the image has no VOLUME: at least one volume directory must be specified for a requestor to send or fetch files (Golem FAQ)';

function validateSettings(settings: ImageSettings): void {
  for (const v of settings.volumes ?? []) {
    normaliseVolumePath(v, 'build.bad-option');
  }
  for (const e of settings.env ?? []) {
    if (!/^[^=]+=/.test(e)) throw new GvmiTestError('build.bad-option', `env ${JSON.stringify(e)} must look like KEY=VALUE`);
  }
  if (settings.workdir !== undefined && !settings.workdir.startsWith('/')) {
    throw new GvmiTestError('build.bad-option', `workdir ${JSON.stringify(settings.workdir)} must be an absolute path`);
  }
}

/** The image's own config with the command line's settings on top (env by key, volumes added). */
export function containerConfigFor(base: ContainerConfig, settings: ImageSettings, imageId: string): ContainerConfig {
  const env = new Map<string, string>();
  for (const entry of [...(base.Env ?? []), ...(settings.env ?? [])]) env.set(entry.split('=', 1)[0]!, entry);
  const volumes: Record<string, object> = {};
  for (const v of Object.keys(base.Volumes ?? {})) volumes[normaliseVolumePath(v, 'build.bad-archive')] = {};
  for (const v of settings.volumes ?? []) volumes[normaliseVolumePath(v, 'build.bad-option')] = {};
  const labels = { ...(base.Labels ?? {}), ...(settings.labels ?? {}) };
  const config: ContainerConfig = {
    Hostname: '',
    Domainname: '',
    User: settings.user ?? base.User ?? '',
    Env: [...env.values()],
    Cmd: settings.cmd ?? base.Cmd ?? null,
    Image: imageId,
    Volumes: Object.keys(volumes).length > 0 ? volumes : null,
    WorkingDir: settings.workdir ?? base.WorkingDir ?? '',
    Entrypoint: settings.entrypoint ?? base.Entrypoint ?? null,
    Labels: Object.keys(labels).length > 0 ? labels : null,
  };
  return config;
}

async function sourceKind(source: string): Promise<BuildResult['sourceKind'] | 'archive-file'> {
  const st = await stat(source).catch((cause: unknown) => {
    throw new GvmiTestError('build.bad-source', `cannot read ${source}: ${(cause as NodeJS.ErrnoException).code ?? cause}`, { cause });
  });
  if (st.isDirectory()) return (await isArchiveDirectory(source)) ? 'oci' : 'directory';
  if (st.isFile()) return 'archive-file';
  throw new GvmiTestError('build.bad-source', `${source} is neither a directory nor an archive file`);
}

async function totalSize(files: string[]): Promise<number> {
  let total = 0;
  for (const file of files) total += (await stat(file)).size;
  return total;
}

export async function buildImage(options: BuildOptions): Promise<BuildResult> {
  validateSettings(options);
  const compression = options.compression ?? 'lzo';
  if (!BUILD_COMPRESSIONS.includes(compression)) {
    throw new GvmiTestError('build.bad-option', `compression ${JSON.stringify(compression)}: choose one of ${BUILD_COMPRESSIONS.join(', ')}`);
  }
  const maxExpandSetting = options.maxExpand ?? (process.env[MAX_EXPAND_ENV] || undefined);
  const maxExpand = maxExpandSetting === undefined ? undefined : parseMaxExpand(maxExpandSetting);
  const output = resolve(options.output);
  if (!options.force && (await stat(output).catch(() => undefined))) {
    throw new GvmiTestError('build.output-exists', `${output} exists`, { hint: 'pass --force to replace it' });
  }
  const outputDir = await stat(dirname(output)).catch(() => undefined);
  if (!outputDir?.isDirectory()) {
    throw new GvmiTestError('build.output-unwritable', `cannot write ${output}: ${dirname(output)} is not an existing directory`, {
      hint: `create it first (mkdir -p ${dirname(output)}) or choose another output`,
    });
  }
  const progress = options.onProgress ?? (() => {});
  const kind = await sourceKind(options.source);
  const scratch = await tempDir({ prefix: 'gvmi-build-', unsafeCleanup: true });
  const partial = join(dirname(output), `.${basename(output)}.partial-${randomBytes(4).toString('hex')}`);
  try {
    let tree = resolve(options.source);
    let pseudoFile: string | undefined;
    let excludeFile: string | undefined;
    let base: ContainerConfig = {};
    let imageId = randomBytes(32).toString('hex');
    let resultKind: BuildResult['sourceKind'] = 'directory';
    const warnings: string[] = [];
    const findings: Finding[] = [];

    if (kind !== 'directory') {
      let archiveRoot = tree;
      // Everything unpacked into the scratch directory is counted against one budget.
      let budget: ExpansionBudget | undefined;
      if (kind === 'archive-file') {
        progress('unpacking archive');
        archiveRoot = join(scratch.path, 'archive');
        await mkdir(archiveRoot);
        budget = await expansionBudget(scratch.path, (await stat(tree)).size, maxExpand);
        await unpackOuterTar(tree, archiveRoot, budget);
      }
      const archive: ImageArchive = await readImageArchive(archiveRoot);
      budget ??= await expansionBudget(scratch.path, await totalSize(archive.layers), maxExpand);
      if (archive.architecture !== 'amd64') {
        warnings.push(`the image is for ${archive.architecture}; Golem providers run amd64`);
      }
      tree = join(scratch.path, 'rootfs');
      await mkdir(tree);
      const builder = new RootfsBuilder(tree, budget);
      for (const [i, layer] of archive.layers.entries()) {
        progress(`applying layer ${i + 1}/${archive.layers.length}`);
        await builder.applyLayer(createReadStream(layer), basename(layer));
      }
      // What gvmkit-build's tree has on top of the image's layers (docker-init-layer.ts).
      await builder.applyLayer(Readable.from([await dockerInitLayerTar()]), 'docker-init-layer');
      pseudoFile = join(scratch.path, 'pseudo');
      await writeFile(pseudoFile, await builder.pseudoDefinitions());
      base = archive.config;
      imageId = archive.imageId;
      resultKind = archive.format;
    } else {
      // The source directory is the user's: the init layer goes in through mksquashfs instead.
      const layer = await dockerInitLayerForDirectory(tree);
      pseudoFile = join(scratch.path, 'pseudo');
      await writeFile(pseudoFile, `${layer.pseudo.join('\n')}\n`);
      if (layer.excludes.length > 0) {
        excludeFile = join(scratch.path, 'exclude');
        await writeFile(excludeFile, `${layer.excludes.join('\n')}\n`);
      }
    }

    const config = containerConfigFor(base, options, imageId);
    if (!config.Volumes) warnings.push(NO_VOLUME_WARNING);

    progress('mksquashfs', 0);
    await runMksquashfs(tree, partial, {
      compression,
      ...(pseudoFile ? { pseudoFile } : {}),
      ...(excludeFile ? { excludeFile } : {}),
      onProgress: (p) => progress('mksquashfs', p),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await appendFile(partial, encodeTrailer(config));
    // A WORKDIR the image does not have fails every run on a provider (exit 9): said now, as
    // inspect says it.
    const metadata = metadataOf(config);
    const workdir = metadata.workingDir !== '/' ? workdirFinding(metadata, await listSquashfs(partial)) : undefined;
    if (workdir) {
      findings.push(workdir);
      warnings.push(`[${workdir.code}] ${workdir.message}; fix: ${workdir.fix}`);
    }
    if (!options.force && (await stat(output).catch(() => undefined))) {
      throw new GvmiTestError('build.output-exists', `${output} appeared while building`, { hint: 'pass --force to replace it' });
    }
    await rename(partial, output);
    return { image: await readGvmi(output), sourceKind: resultKind, warnings, findings };
  } finally {
    await rm(partial, { force: true }).catch(() => {});
    await scratch.cleanup();
  }
}
