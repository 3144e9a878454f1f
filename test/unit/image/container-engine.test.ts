/**
 * The engine clients' command lines and how their answers are read, with the engines' answers
 * given (the Podman path runs for real in test/integration/engine-image.test.ts; Docker's daemon
 * is not on this machine): the same code serves both.
 */
import { describe, expect, it } from 'vitest';
import { isGvmiTestError } from '../../../src/errors.js';
import {
  findEngineImage, inspectArgs, readInspectAnswer, saveArgs, saveEngineImage, type EngineAnswer, type EngineCli,
} from '../../../src/image/container-engine.js';
import type { EngineName } from '../../../src/image/image-reference.js';

const ID = 'c'.repeat(64);

/** An EngineCli whose engines answer as told, recording every command line. */
function fakeCli(installed: Partial<Record<EngineName, (args: readonly string[]) => EngineAnswer>>, env: NodeJS.ProcessEnv = {}) {
  const calls: { client: string; args: readonly string[] }[] = [];
  const cli: EngineCli = {
    find: async (engine) => (installed[engine] ? `/usr/bin/${engine}` : undefined),
    run: async (client, args) => {
      calls.push({ client, args });
      const engine = client.split('/').pop() as EngineName;
      return installed[engine]!(args);
    },
    env,
  };
  return { cli, calls };
}

const ok = (stdout: string): EngineAnswer => ({ exitCode: 0, stdout, stderr: '' });
const fail = (stderr: string): EngineAnswer => ({ exitCode: 1, stdout: '', stderr });
const DOCKER_NO_DAEMON = 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n';
const DOCKER_UNKNOWN = 'Error response from daemon: No such image: app:1\n';
const PODMAN_UNKNOWN = 'Error: inspecting object: app:1: image not known\n';

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => undefined, (e: unknown) => e);
}

describe('engine command lines', () => {
  it('inspect asks for the id alone; the extra global options go first, from the engine\'s own variable', () => {
    const env = { GVMI_TEST_PODMAN_ARGS: ' --root /tmp/s  --runroot /tmp/r --storage-driver vfs ', GVMI_TEST_DOCKER_ARGS: '--context ci' };
    expect(inspectArgs('podman', env, 'app:1')).toEqual(['--root', '/tmp/s', '--runroot', '/tmp/r', '--storage-driver', 'vfs', 'image', 'inspect', '--format', '{{.Id}}', 'app:1']);
    expect(inspectArgs('docker', env, 'app:1')).toEqual(['--context', 'ci', 'image', 'inspect', '--format', '{{.Id}}', 'app:1']);
    expect(inspectArgs('docker', {}, 'app')).toEqual(['image', 'inspect', '--format', '{{.Id}}', 'app']);
  });

  it('save names the image by id, into the tarball; Podman is asked for the docker-archive format', () => {
    expect(saveArgs('docker', {}, ID, '/t/image.tar')).toEqual(['save', '-o', '/t/image.tar', ID]);
    expect(saveArgs('podman', { GVMI_TEST_PODMAN_ARGS: '--root /s' }, ID, '/t/image.tar')).toEqual(['--root', '/s', 'save', '--format', 'docker-archive', '-o', '/t/image.tar', ID]);
  });
});

describe('reading an inspect answer', () => {
  it('takes Docker\'s sha256:-prefixed id and Podman\'s bare one', () => {
    expect(readInspectAnswer('docker', '/d', ok(`sha256:${ID}\n`))).toMatchObject({ state: 'found', imageId: ID });
    expect(readInspectAnswer('podman', '/p', ok(`${ID}\n`))).toMatchObject({ state: 'found', imageId: ID });
  });

  it('tells an unknown image from an engine that cannot answer', () => {
    expect(readInspectAnswer('docker', '/d', fail(DOCKER_UNKNOWN)).state).toBe('not-found');
    expect(readInspectAnswer('docker', '/d', fail('Error: No such image: app:1')).state).toBe('not-found');
    expect(readInspectAnswer('podman', '/p', fail(PODMAN_UNKNOWN)).state).toBe('not-found');
    expect(readInspectAnswer('docker', '/d', fail(DOCKER_NO_DAEMON)).state).toBe('unusable');
    expect(readInspectAnswer('docker', '/d', fail('permission denied while trying to connect to the Docker daemon socket')).state).toBe('unusable');
    expect(readInspectAnswer('podman', '/p', ok('not an id')).state).toBe('unusable');
  });
});

describe('findEngineImage', () => {
  it('asks Docker first and stops there when Docker has the image', async () => {
    const { cli, calls } = fakeCli({ docker: () => ok(`sha256:${ID}`), podman: () => ok('d'.repeat(64)) });
    expect(await findEngineImage('app:1', undefined, cli)).toEqual({ engine: 'docker', client: '/usr/bin/docker', name: 'app:1', imageId: ID });
    expect(calls.map((c) => c.client)).toEqual(['/usr/bin/docker']);
  });

  it('falls through to Podman when Docker does not know the image, or has no daemon', async () => {
    for (const docker of [DOCKER_UNKNOWN, DOCKER_NO_DAEMON]) {
      const { cli, calls } = fakeCli({ docker: () => fail(docker), podman: () => ok(ID) });
      expect(await findEngineImage('app:1', undefined, cli)).toMatchObject({ engine: 'podman', imageId: ID });
      expect(calls.map((c) => c.client)).toEqual(['/usr/bin/docker', '/usr/bin/podman']);
    }
  });

  it('asks only the engine a prefix chose', async () => {
    const { cli, calls } = fakeCli({ docker: () => ok(`sha256:${ID}`), podman: () => fail(PODMAN_UNKNOWN) });
    const error = await failure(findEngineImage('app:1', 'podman', cli));
    expect(isGvmiTestError(error, 'image.not-in-engine')).toBe(true);
    expect(calls.map((c) => c.client)).toEqual(['/usr/bin/podman']);
  });

  it('setup.engine-missing when no engine client is installed', async () => {
    const { cli } = fakeCli({});
    const error = await failure(findEngineImage('app:1', undefined, cli));
    expect(isGvmiTestError(error, 'setup.engine-missing')).toBe(true);
    expect((error as Error).message).toContain('app:1');
    const forced = await failure(findEngineImage('app:1', 'docker', fakeCli({ podman: () => ok(ID) }).cli));
    expect(isGvmiTestError(forced, 'setup.engine-missing')).toBe(true);
  });

  it('image.not-in-engine when an engine answers that it has no such image, with what each said', async () => {
    const { cli } = fakeCli({ docker: () => fail(DOCKER_NO_DAEMON), podman: () => fail(PODMAN_UNKNOWN) });
    const error = await failure(findEngineImage('app:1', undefined, cli));
    expect(isGvmiTestError(error, 'image.not-in-engine')).toBe(true);
    expect((error as Error).message).toContain('image not known');
    expect((error as Error).message).toContain('Cannot connect to the Docker daemon');
  });

  it('setup.engine-unusable when the only engines there cannot answer', async () => {
    const { cli } = fakeCli({ docker: () => fail(DOCKER_NO_DAEMON) });
    const error = await failure(findEngineImage('app:1', undefined, cli));
    expect(isGvmiTestError(error, 'setup.engine-unusable')).toBe(true);
  });
});

describe('saveEngineImage', () => {
  it('runs the save command line, and a failed save is setup.engine-unusable with the engine\'s words', async () => {
    const image = { engine: 'docker' as const, client: '/usr/bin/docker', name: 'app:1', imageId: ID };
    const { cli, calls } = fakeCli({ docker: () => ok('') }, { GVMI_TEST_DOCKER_ARGS: '--host unix:///tmp/d.sock' });
    await saveEngineImage(image, '/t/x.tar', cli);
    expect(calls).toEqual([{ client: '/usr/bin/docker', args: ['--host', 'unix:///tmp/d.sock', 'save', '-o', '/t/x.tar', ID] }]);
    const broken = fakeCli({ docker: () => fail('Error: write /t/x.tar: no space left on device') });
    const error = await failure(saveEngineImage(image, '/t/x.tar', broken.cli));
    expect(isGvmiTestError(error, 'setup.engine-unusable')).toBe(true);
    expect((error as Error).message).toContain('no space left on device');
  });
});
