/**
 * Which image arguments are paths and which name a container engine's image: existing paths
 * always win (every argument that worked before means the same), prefixes choose an engine.
 */
import { describe, expect, it } from 'vitest';
import { isGvmiTestError } from '../../../src/errors.js';
import { isImageReference, parseImageArgument } from '../../../src/image/image-reference.js';

const existing = (...paths: string[]) => async (p: string): Promise<boolean> => paths.includes(p);

describe('parseImageArgument', () => {
  it('keeps an existing path a path, whatever it looks like', async () => {
    for (const arg of ['my-app', 'my-app:1', 'podman:my-app', 'docker:x', 'image.gvmi']) {
      expect(await parseImageArgument(arg, existing(arg))).toEqual({ kind: 'path', path: arg });
    }
  });

  it('reads docker: and podman: as the engine to ask', async () => {
    expect(await parseImageArgument('docker:my-app:1.2', existing())).toEqual({ kind: 'engine', engine: 'docker', name: 'my-app:1.2' });
    expect(await parseImageArgument('podman:ghcr.io/org/app@sha256:' + 'a'.repeat(64), existing()))
      .toEqual({ kind: 'engine', engine: 'podman', name: `ghcr.io/org/app@sha256:${'a'.repeat(64)}` });
    expect(await parseImageArgument('podman:localhost:5000/team/app:latest', existing()))
      .toEqual({ kind: 'engine', engine: 'podman', name: 'localhost:5000/team/app:latest' });
  });

  it('reads a bare NAME[:TAG] that is no path as an image of whichever engine has it', async () => {
    expect(await parseImageArgument('debian:bookworm', existing())).toEqual({ kind: 'engine', engine: undefined, name: 'debian:bookworm' });
    expect(await parseImageArgument('my_app', existing())).toEqual({ kind: 'engine', engine: undefined, name: 'my_app' });
  });

  it('keeps what looks like a file a path even when it is missing, so its error says so', async () => {
    for (const arg of ['missing.gvmi', './app', '../x/app', '/abs/app', '~/app', 'image.tar', 'oci.tar.gz', 'Upper-Case']) {
      expect(await parseImageArgument(arg, existing())).toEqual({ kind: 'path', path: arg });
    }
  });

  it('refuses a prefix followed by no image reference (usage), an option-like name included', async () => {
    for (const arg of ['docker:', 'podman:-v', 'docker:--help', 'podman:My App', 'docker:a::b']) {
      const error = await parseImageArgument(arg, existing()).catch((e: unknown) => e);
      expect(isGvmiTestError(error, 'usage'), arg).toBe(true);
    }
  });
});

describe('isImageReference', () => {
  it('takes Docker reference forms and refuses what an engine would read as an option', () => {
    for (const ok of ['app', 'app:v1.0', 'org/app', 'registry.example.com:443/org/app:tag', 'a__b', 'a-b--c', '0123abcd']) expect(isImageReference(ok), ok).toBe(true);
    for (const bad of ['-app', 'App', 'app:', ':tag', 'app:-x', 'a/', '/a', 'a b', '', 'a'.repeat(256)]) expect(isImageReference(bad), bad).toBe(false);
  });
});
