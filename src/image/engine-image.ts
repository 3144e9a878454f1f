/**
 * Images straight from a container engine: an image argument (image-reference.ts) that names an
 * engine's image is saved from the engine (container-engine.ts) as a `docker save` tarball and
 * converted by `build`'s own path. `build` converts into its output; `run`, `inspect` and the
 * other commands that take an image use a conversion remembered by the engine's image id
 * (converted-images.ts), so only the first use of an image pays for it.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GvmiTestError } from '../errors.js';
import { dir as tempDir } from 'tmp-promise';
import { buildImage, type BuildOptions, type BuildResult } from './build-image.js';
import { findEngineImage, saveEngineImage, systemEngineCli, type EngineCli, type EngineImage } from './container-engine.js';
import {
  convertedImageKey, describeConvertedImage, findConvertedImage, prepareConvertedImage, pruneConvertedImages,
} from './converted-images.js';
import { parseImageArgument, type EngineName } from './image-reference.js';

/** Where an image came from, when an engine gave it. */
export interface EngineImageInfo {
  engine: EngineName;
  /** The reference as given, without the engine prefix. */
  name: string;
  /** The engine's image id (hex). */
  imageId: string;
}

export interface ResolvedImage {
  /** The .gvmi to use. */
  path: string;
  /** Set when the argument named an engine's image. */
  engineImage?: EngineImageInfo & {
    /** true: an earlier conversion of the same image id was used. */
    cached: boolean;
    /** How long saving and converting took (a fresh conversion only). */
    convertMs?: number;
  };
}

export interface EngineImageOptions {
  cli?: EngineCli;
  /** Called before an image is saved and converted (which can take a while). */
  onConvert?: (image: EngineImageInfo) => void;
}

const pathExists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

function infoOf(image: EngineImage): EngineImageInfo {
  return { engine: image.engine, name: image.name, imageId: image.imageId };
}

/** Saves the engine's image into a temporary directory and hands the tarball to `use`. */
async function withSavedImage<T>(image: EngineImage, cli: EngineCli, use: (tarball: string) => Promise<T>): Promise<T> {
  const scratch = await tempDir({ prefix: 'gvmi-engine-', unsafeCleanup: true });
  try {
    const tarball = join(scratch.path, 'image.tar');
    await saveEngineImage(image, tarball, cli);
    return await use(tarball);
  } finally {
    await scratch.cleanup();
  }
}

/**
 * The .gvmi an image argument stands for: a path as it is (a .gvmi file; not checked here), or an
 * engine's image converted (or found converted) under the cache.
 */
export async function resolveImage(argument: string, options: EngineImageOptions = {}): Promise<ResolvedImage> {
  const cli = options.cli ?? systemEngineCli;
  const parsed = await parseImageArgument(argument, pathExists);
  if (parsed.kind === 'path') return { path: parsed.path };
  const image = await findEngineImage(parsed.name, parsed.engine, cli);
  const key = convertedImageKey(image.engine, image.imageId);
  const found = await findConvertedImage(key);
  if (found) return { path: found, engineImage: { ...infoOf(image), cached: true } };
  options.onConvert?.(infoOf(image));
  const started = Date.now();
  const output = await prepareConvertedImage(key);
  await withSavedImage(image, cli, (tarball) => buildImage({ source: tarball, output, force: true }));
  await describeConvertedImage(key, { ...infoOf(image), convertedAt: new Date().toISOString() });
  await pruneConvertedImages(undefined, key).catch(() => []);
  return { path: output, engineImage: { ...infoOf(image), cached: false, convertMs: Date.now() - started } };
}

export type BuildFromResult = BuildResult & { engineImage?: EngineImageInfo };

/**
 * `build`'s source: a path (a rootfs directory, a docker-save tarball, an OCI layout) built as
 * always, or an engine's image saved and built into the output with the options given.
 */
export async function buildImageFrom(argument: string, options: Omit<BuildOptions, 'source'>, engineOptions: EngineImageOptions = {}): Promise<BuildFromResult> {
  const cli = engineOptions.cli ?? systemEngineCli;
  const parsed = await parseImageArgument(argument, pathExists);
  if (parsed.kind === 'path') return buildImage({ ...options, source: parsed.path });
  // Said before the engine saves what may be gigabytes, as buildImage would say it after.
  const output = resolve(options.output);
  if (!options.force && (await pathExists(output))) {
    throw new GvmiTestError('build.output-exists', `${output} exists`, { hint: 'pass --force to replace it' });
  }
  const image = await findEngineImage(parsed.name, parsed.engine, cli);
  engineOptions.onConvert?.(infoOf(image));
  options.onProgress?.(`saving ${image.engine} image ${image.name}`);
  const result = await withSavedImage(image, cli, (tarball) => buildImage({ ...options, source: tarball }));
  return { ...result, engineImage: infoOf(image) };
}
