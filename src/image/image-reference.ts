/**
 * What an image argument names (`build`, `run`, `inspect`, …): a file or directory on this host,
 * or an image in a local container engine, as gvmkit-build takes them. Existing paths win, so
 * every argument that worked before still means the same; `docker:NAME[:TAG]` and
 * `podman:NAME[:TAG]` choose an engine; a bare `NAME[:TAG]` that is no path on this host is
 * looked up in Docker, then Podman. Pure: whether a path exists is asked of the caller.
 */
import { GvmiTestError } from '../errors.js';

export const ENGINES = ['docker', 'podman'] as const;
export type EngineName = (typeof ENGINES)[number];

export type ImageArgument =
  | { kind: 'path'; path: string }
  /** `engine` undefined: whichever engine has the image, Docker first. */
  | { kind: 'engine'; engine: EngineName | undefined; name: string };

// Docker's reference grammar (distribution/reference), loosely: [host[:port]/]path[:tag][@digest].
// Every part starts with a letter or digit, so no name can be taken for an engine's option.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const HOST = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)';
const REFERENCE = new RegExp(`^${HOST}?${COMPONENT}(?:/${COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`);

/** Whether `name` is a well-formed image reference (`debian:bookworm`, `ghcr.io/o/app:1`, an image id). */
export function isImageReference(name: string): boolean {
  return name.length <= 255 && REFERENCE.test(name);
}

/**
 * Arguments that look like a file (`./x`, `/abs`, `~/x`, `img.gvmi`, `img.tar`) stay paths even
 * when missing: `run missng.gvmi` should say the file is missing, not that no engine has it.
 */
function looksLikeFile(argument: string): boolean {
  return /^(\.{0,2}\/|~)/.test(argument) || /\.(gvmi|tar|tgz|tar\.gz|squashfs)$/i.test(argument);
}

/**
 * Reads an image argument. `exists` says whether a path is there (a file or a directory).
 * Throws usage for `docker:`/`podman:` with a name that is no image reference.
 */
export async function parseImageArgument(argument: string, exists: (path: string) => Promise<boolean>): Promise<ImageArgument> {
  if (await exists(argument)) return { kind: 'path', path: argument };
  const prefix = /^(docker|podman):(.*)$/s.exec(argument);
  if (prefix) {
    const engine = prefix[1] as EngineName;
    const name = prefix[2]!;
    if (!isImageReference(name)) {
      throw new GvmiTestError('usage', `${argument}: ${JSON.stringify(name)} is not an image reference`, {
        hint: `name an image of the local ${engine} engine: ${engine}:NAME[:TAG], e.g. ${engine}:my-app:latest (\`${engine} images\` lists them)`,
      });
    }
    return { kind: 'engine', engine, name };
  }
  if (looksLikeFile(argument) || !isImageReference(argument)) return { kind: 'path', path: argument };
  return { kind: 'engine', engine: undefined, name: argument };
}
