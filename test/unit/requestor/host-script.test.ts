import { chmod, copyFile, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultVolume, findHostScript, hostScriptFile, uploadHostScript } from '../../../src/requestor/host-script.js';
import type { VmLike } from '../../../src/vm/vm-like.js';

let dir: string;
const cwd = process.cwd();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-test-host-script-'));
  await writeFile(join(dir, 'job.sh'), 'echo job\n');
  await writeFile(join(dir, 'tool.py'), '#!/usr/bin/python3\nprint(1)\n');
  await chmod(join(dir, 'tool.py'), 0o644);
  await mkdir(join(dir, 'sub.d'));
  process.chdir(dir);
});

afterAll(async () => {
  process.chdir(cwd);
  await rm(dir, { recursive: true, force: true });
});

/**
 * The part of a VM uploadHostScript uses: `upload` copies into a directory standing for the
 * volume, with the file's mode, as StartedVm.upload does (its real path: test/integration/cli-run).
 */
function volumeVm(volumes: string[], declared: string[], host: string): Pick<VmLike, 'info' | 'volumes' | 'upload'> & { uploads: string[] } {
  const uploads: string[] = [];
  return {
    uploads,
    info: { metadata: { volumes: declared } } as unknown as VmLike['info'],
    volumes: volumes.map((guestPath) => ({ guestPath, hostPath: host })),
    upload: async (hostPath: string, guestPath: string) => {
      uploads.push(guestPath);
      await copyFile(hostPath, join(host, guestPath.split('/').pop()!));
      await chmod(join(host, guestPath.split('/').pop()!), (await stat(hostPath)).mode & 0o777);
    },
  };
}

describe('findHostScript: which first words are host files', () => {
  it('a relative path to a file here is one, resolved', async () => {
    expect(await findHostScript('job.sh')).toBe(join(dir, 'job.sh'));
    expect(await findHostScript('./tool.py')).toBe(join(dir, 'tool.py'));
  });

  it('an absolute path, a bare name, a directory, a missing file are the guest\'s', async () => {
    expect(await findHostScript(join(dir, 'job.sh'))).toBeUndefined();
    expect(await findHostScript('/bin/sh')).toBeUndefined();
    expect(await findHostScript('ls')).toBeUndefined();
    expect(await findHostScript('./sub.d')).toBeUndefined();
    expect(await findHostScript('./missing.sh')).toBeUndefined();
  });

  it('hostScriptFile takes any path and refuses what is no file with a usage error', async () => {
    expect(await hostScriptFile(join(dir, 'job.sh'))).toBe(join(dir, 'job.sh'));
    await expect(hostScriptFile('nope.sh', '--script nope.sh')).rejects.toMatchObject({ code: 'usage', message: '--script nope.sh: no such file on this host' });
    await expect(hostScriptFile('sub.d')).rejects.toMatchObject({ code: 'usage', message: 'sub.d: not a regular file on this host' });
  });
});

describe('uploadHostScript', () => {
  it('the default volume is the image\'s first VOLUME that is mounted, else the first mounted', () => {
    const vm = (mounted: string[], declared: string[]) => ({ info: { metadata: { volumes: declared } } as unknown as VmLike['info'], volumes: mounted.map((guestPath) => ({ guestPath, hostPath: '/x' })) });
    expect(defaultVolume(vm(['/extra', '/golem/input'], ['/golem/input']))).toBe('/golem/input');
    expect(defaultVolume(vm(['/extra'], ['/golem/input']))).toBe('/extra');
    expect(defaultVolume(vm([], []))).toBeUndefined();
  });

  it('a script without #! goes into the default volume and runs through /bin/sh with its arguments', async () => {
    const host = await mkdtemp(join(dir, 'volume-'));
    const vm = volumeVm(['/golem/input'], ['/golem/input'], host);
    expect(await uploadHostScript(vm, 'job.sh', ['a', 'b c'])).toEqual({ host: join(dir, 'job.sh'), guest: '/golem/input/job.sh', argv: ['/bin/sh', '/golem/input/job.sh', 'a', 'b c'] });
    expect(vm.uploads).toEqual(['/golem/input/job.sh']);
  });

  it('a #! script is sent executable and run as itself; the host file keeps its mode', async () => {
    const host = await mkdtemp(join(dir, 'volume-'));
    const vm = volumeVm(['/golem/input'], ['/golem/input'], host);
    const uploaded = await uploadHostScript(vm, './tool.py', ['x']);
    expect(uploaded.argv).toEqual(['/golem/input/tool.py', 'x']);
    expect((await stat(join(host, 'tool.py'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(dir, 'tool.py'))).mode & 0o777).toBe(0o644);
  });

  it('without a volume: transfer.not-in-volume, as a requestor can send files nowhere else', async () => {
    const vm = volumeVm([], [], dir);
    await expect(uploadHostScript(vm, 'job.sh')).rejects.toMatchObject({ code: 'transfer.not-in-volume' });
    expect(vm.uploads).toEqual([]);
  });
});
