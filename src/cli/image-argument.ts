/**
 * The image argument of every command that takes one (`run`, `inspect`, `start-entrypoint`,
 * `serve`, `shell`): a .gvmi path, or an image of the local Docker or Podman engine
 * (`IMAGE[:TAG]`, `docker:IMAGE[:TAG]`, `podman:IMAGE[:TAG]`), converted on first use and then
 * taken from the cache (src/image/engine-image.ts). Which happened is said on stderr (unless
 * --quiet), and in --json output through `engineImageRecord`.
 */
import { stat } from 'node:fs/promises';
import { writeLine, type CliIo } from './io.js';
import { printable } from '../terminal-safe.js';
import type { ResolvedImage } from '../image/engine-image.js';

/** The .gvmi for `argument`; an engine's image is converted (or found converted) first. */
export async function imagePathFor(argument: string, io: CliIo, flags: { quiet?: boolean } = {}): Promise<ResolvedImage> {
  // A path (the common case) costs a stat: the conversion's modules load only for an engine's image.
  const { parseImageArgument } = await import('../image/image-reference.js');
  const parsed = await parseImageArgument(argument, (path) => stat(path).then(() => true, () => false));
  if (parsed.kind === 'path') return { path: parsed.path };
  const { resolveImage } = await import('../image/engine-image.js');
  const say = (line: string): void => {
    if (!flags.quiet) writeLine(io.stderr, `gvmi-test: ${printable(line)}`);
  };
  const resolved = await resolveImage(argument, {
    onConvert: (image) => say(`converting ${image.engine} image ${image.name} (id ${image.imageId.slice(0, 12)}) to a .gvmi (once per image id)`),
  });
  const e = resolved.engineImage;
  if (e) {
    say(e.cached
      ? `${e.engine} image ${e.name} (id ${e.imageId.slice(0, 12)}): cached conversion ${resolved.path}`
      : `${e.engine} image ${e.name} (id ${e.imageId.slice(0, 12)}): converted in ${((e.convertMs ?? 0) / 1000).toFixed(1)} s, cached as ${resolved.path}`);
  }
  return resolved;
}

/** `record` with where its image came from, when an engine gave it (for --json). */
export function withEngineImage<T extends object>(record: T, resolved: ResolvedImage): T | (T & { engineImage: unknown }) {
  return resolved.engineImage ? { ...record, engineImage: { ...resolved.engineImage, gvmi: resolved.path } } : record;
}
