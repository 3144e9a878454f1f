/**
 * Images straight from a container engine, the whole way: a FROM scratch Dockerfile holding the
 * busybox root filesystem, built by the real Podman into a store of the test's own (vfs, chroot
 * isolation) → `gvmi-test build podman:IMAGE` → `run` converts it on the fly, a second `run` uses
 * the cached conversion, a rebuilt image (a new id) converts again → `inspect` and `cache` see
 * it. The CLI is the built one, in child processes, as a user runs it.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand } from '../helpers/has-command.js';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';

const CLI = resolve('dist/cli/main.js');
const isRoot = process.getuid?.() === 0;
// `podman build --isolation chroot` with a vfs store works as root without a daemon or user
// namespaces; rootless Podman needs subordinate uid ranges this test does not set up.
const canBuild = hasCommand('podman') && isRoot;
const SKIP_REASON = !hasCommand('podman') ? 'podman is not installed (make deps installs it)' : 'podman builds here only as root (rootless needs subuid/subgid ranges)';

const TAG = `gvmi-test-engine-${randomBytes(4).toString('hex')}:1`;
let dir: string;
let storeArgs: string[];
let env: Record<string, string>;

function podman(args: string[]): string {
  return execFileSync('podman', [...storeArgs, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

async function buildEngineImage(extraFile?: string): Promise<string> {
  const context = join(dir, 'context');
  await rm(context, { recursive: true, force: true });
  await makeBusyboxRootfs(join(context, 'rootfs'));
  if (extraFile) await writeFile(join(context, 'rootfs', 'etc', 'version'), extraFile);
  await writeFile(join(context, 'Dockerfile'), [
    'FROM scratch',
    'ADD rootfs /',
    'ENV PATH=/bin GREETING=from-podman',
    'VOLUME ["/golem/input", "/golem/output"]',
    'WORKDIR /golem/work',
    '',
  ].join('\n'));
  podman(['build', '--isolation', 'chroot', '-t', TAG, context]);
  return podman(['image', 'inspect', '--format', '{{.Id}}', TAG]);
}

function cli(args: string[]) {
  return execa('node', [CLI, ...args], { reject: false, cwd: dir, env, extendEnv: true });
}

beforeAll(async () => {
  if (!canBuild) return;
  dir = await mkdtemp(join(tmpdir(), 'gvmi-engine-'));
  await mkdir(join(dir, 'store'));
  storeArgs = ['--storage-driver', 'vfs', '--root', join(dir, 'store', 'root'), '--runroot', join(dir, 'store', 'run')];
  // The converted images (and this test's snapshots) go to a cache of the test's own.
  env = { GVMI_TEST_PODMAN_ARGS: storeArgs.join(' '), GVMI_TEST_CACHE: join(dir, 'cache') };
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!canBuild)(`a Podman image, Dockerfile to VM (skipped when: ${SKIP_REASON})`, () => {
  it('build podman:IMAGE, run (converted, then cached), a rebuilt image converted again, inspect and cache', async () => {
    const firstId = await buildEngineImage();

    // build: saved from Podman by id and converted with the image's own config
    const built = await cli(['build', `podman:${TAG}`, '-o', join(dir, 'x.gvmi'), '--json']);
    expect(built.stderr).toBe('');
    expect(built.exitCode).toBe(0);
    const build = JSON.parse(built.stdout) as { output: string; source: string; engineImage: { engine: string; name: string; imageId: string }; metadata: { volumes: string[]; workingDir: string; env: string[] } };
    expect(build.engineImage).toEqual({ engine: 'podman', name: TAG, imageId: firstId });
    expect(build.source).toBe('docker-save');
    expect(build.metadata.volumes.sort()).toEqual(['/golem/input', '/golem/output']);
    expect(build.metadata.workingDir).toBe('/golem/work');
    expect(build.metadata.env).toContain('GREETING=from-podman');
    const inspected = await cli(['inspect', join(dir, 'x.gvmi'), '--json']);
    expect(inspected.exitCode).toBe(0);
    expect((JSON.parse(inspected.stdout) as { metadata: { imageId: string } }).metadata.imageId).toBe(firstId);

    // run: the first use converts, and says so
    const first = await cli(['run', `podman:${TAG}`, '--', '/bin/echo', 'hi']);
    expect(first.stdout).toBe('hi');
    expect(first.exitCode).toBe(0);
    expect(first.stderr).toContain(`gvmi-test: converting podman image ${TAG} (id ${firstId.slice(0, 12)})`);
    expect(first.stderr).toMatch(/converted in [\d.]+ s, cached as .*\/cache\/images\/[0-9a-f]{32}\.gvmi/);

    // a second run, by the bare name (Docker, when there, does not have it: Podman does), uses the cached conversion
    const second = await cli(['run', TAG, '--json', '--', '/bin/sh', '-c', 'echo $GREETING; pwd']);
    expect(second.exitCode).toBe(0);
    expect(second.stderr).toContain(`podman image ${TAG} (id ${firstId.slice(0, 12)}): cached conversion`);
    expect(second.stderr).not.toContain('converting');
    const record = JSON.parse(second.stdout) as { stdout: string; engineImage: { engine: string; imageId: string; cached: boolean; gvmi: string } };
    expect(record.stdout).toBe('from-podman\n/golem/work\n');
    expect(record.engineImage).toMatchObject({ engine: 'podman', imageId: firstId, cached: true });
    // Compared across the runtimes, the one record says which engine image it ran too.
    const both = await cli(['run', TAG, '--runtime-version', 'all', '--json', '--', '/bin/true']);
    expect(both.exitCode, both.stderr).toBe(0);
    expect(JSON.parse(both.stdout)).toMatchObject({ runtimeVersion: 'all', engineImage: { engine: 'podman', imageId: firstId, cached: true } });

    // the same tag on a rebuilt image is another image id: converted again, and the new file is there
    const secondId = await buildEngineImage('v2\n');
    expect(secondId).not.toBe(firstId);
    const rebuilt = await cli(['run', `podman:${TAG}`, '--json', '--', '/bin/cat', '/etc/version']);
    expect(rebuilt.exitCode).toBe(0);
    const rebuiltRecord = JSON.parse(rebuilt.stdout) as { stdout: string; engineImage: { imageId: string; cached: boolean; gvmi: string } };
    expect(rebuiltRecord.stdout).toBe('v2\n');
    expect(rebuiltRecord.engineImage).toMatchObject({ imageId: secondId, cached: false });
    expect(rebuiltRecord.engineImage.gvmi).not.toBe(record.engineImage.gvmi);

    // inspect takes the reference too (cached now), with the image's traps
    const inspectRef = await cli(['inspect', `podman:${TAG}`, '--json']);
    expect(inspectRef.exitCode).toBe(0);
    const view = JSON.parse(inspectRef.stdout) as { path: string; shadowed: string[]; engineImage: { cached: boolean; imageId: string } };
    expect(view.engineImage).toMatchObject({ cached: true, imageId: secondId });
    expect(view.path).toBe(rebuiltRecord.engineImage.gvmi);
    expect(view.shadowed).toContain('/golem/input/baked.txt');

    // cache: both conversions listed, with what they came from
    const cache = await cli(['cache', '--json']);
    expect(cache.exitCode).toBe(0);
    const images = (JSON.parse(cache.stdout) as { classes: { class: string; entries: { note?: string }[] }[] }).classes.find((c) => c.class === 'images')!;
    expect(images.entries.map((e) => e.note).sort()).toEqual([`podman:${TAG} (id ${firstId.slice(0, 12)})`, `podman:${TAG} (id ${secondId.slice(0, 12)})`].sort());
  }, 600_000);

  it('an image the engine does not have: image.not-in-engine (exit 65), naming it', async () => {
    const r = await cli(['run', 'podman:gvmi-test-no-such-image:1', '--json', '--', '/bin/true']);
    expect(r.exitCode).toBe(65);
    const error = (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('image.not-in-engine');
    expect(error.message).toContain('gvmi-test-no-such-image:1');
  }, 120_000);
});
