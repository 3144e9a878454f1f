/**
 * gvmi-test build gives the tree gvmkit-build gives: the image under Docker's init layer (moby
 * daemon/initlayer/setup_unix.go; reference §1), from a directory and from an archive alike.
 */
import { execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../../src/image/build-image.js';
import { DOCKER_INIT_LAYER } from '../../../src/image/docker-init-layer.js';
import { listSquashfs, type SquashfsEntry } from '../../../src/image/squashfs-listing.js';
import { makeDockerSave, makeOciLayout } from '../../helpers/tar-builder.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-initlayer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function entries(image: string): Promise<Map<string, SquashfsEntry>> {
  return new Map((await listSquashfs(image)).map((e) => [e.path, e]));
}

function cat(image: string, path: string): string {
  return execFileSync('unsquashfs', ['-cat', image, path], { encoding: 'utf8' });
}

/** What moby's layer leaves at each of its paths, whatever the image had there. */
function expectInitLayer(listed: Map<string, SquashfsEntry>): void {
  for (const e of DOCKER_INIT_LAYER) {
    const got = listed.get(`/${e.path}`);
    expect(got, e.path).toBeDefined();
    expect({ path: e.path, type: got!.type, uid: got!.uid, gid: got!.gid }).toEqual({ path: e.path, type: e.type, uid: 0, gid: 0 });
    if (e.type === 'symlink') expect(got!.linkTarget).toBe('/proc/mounts');
    else expect(got!.mode, e.path).toBe(e.type === 'dir' ? 'drwxr-xr-x' : '-rwxr-xr-x');
    if (e.type === 'file') expect(got!.size, e.path).toBe(0);
  }
}

describe('Docker\'s init layer in every built image', () => {
  it('lists exactly moby\'s entries: /proc, /sys, /dev/pts, /dev/shm, the empty files and /etc/mtab', () => {
    expect(DOCKER_INIT_LAYER.map((e) => `${e.type} /${e.path}${e.target ? ` -> ${e.target}` : ''}`).sort()).toEqual([
      'dir /dev', 'dir /dev/pts', 'dir /dev/shm', 'dir /etc', 'dir /proc', 'dir /sys',
      'file /.dockerenv', 'file /dev/console', 'file /etc/hostname', 'file /etc/hosts', 'file /etc/resolv.conf',
      'symlink /etc/mtab -> /proc/mounts',
    ]);
  });

  it('from a directory: added over the source (hiding its hosts, resolv.conf link, mtab), the source untouched', async () => {
    const source = join(dir, 'src');
    await mkdir(join(source, 'etc'), { recursive: true });
    await mkdir(join(source, 'bin'));
    await writeFile(join(source, 'etc/hosts'), '10.0.0.1\tbaked\n');
    await writeFile(join(source, 'etc/passwd'), 'root:x:0:0::/:/bin/sh\n');
    await symlink('../run/systemd/resolve/stub-resolv.conf', join(source, 'etc/resolv.conf'));
    await writeFile(join(source, 'etc/mtab'), 'a regular mtab\n');
    await mkdir(join(source, 'etc/hostname')); // a directory where the layer puts a file
    await writeFile(join(source, 'etc/hostname/inside'), 'x');
    await chmod(join(source, 'etc'), 0o700);
    await mkdir(join(source, 'sys'), { mode: 0o700 });
    await writeFile(join(source, 'sys/kept'), 'the image\'s own /sys content stays (directories merge)\n');
    const image = join(dir, 'from-dir.gvmi');
    await buildImage({ source, output: image, volumes: ['/out'] });

    const listed = await entries(image);
    expectInitLayer(listed);
    expect(cat(image, '/etc/hosts')).toBe('');
    expect(cat(image, '/etc/passwd')).toBe('root:x:0:0::/:/bin/sh\n');
    expect(cat(image, '/sys/kept')).toMatch(/stays/);
    expect(listed.has('/etc/hostname/inside')).toBe(false);
    expect(listed.has('/bin')).toBe(true);
    // the user's directory is as it was
    expect(await readFile(join(source, 'etc/hosts'), 'utf8')).toBe('10.0.0.1\tbaked\n');
    expect(await readlink(join(source, 'etc/resolv.conf'))).toBe('../run/systemd/resolve/stub-resolv.conf');
    expect((await lstat(join(source, 'etc'))).mode & 0o777).toBe(0o700);
    expect((await lstat(join(source, '.dockerenv')).catch(() => undefined))).toBeUndefined();
  });

  it('from a directory whose /etc is a symlink: the layer\'s /etc replaces it, nothing outside is read', async () => {
    const source = join(dir, 'src-etc-link');
    const outside = join(dir, 'outside-etc');
    await mkdir(source);
    await mkdir(outside);
    await writeFile(join(outside, 'secret'), 'host file\n');
    await symlink(outside, join(source, 'etc'));
    const image = join(dir, 'etc-link.gvmi');
    await buildImage({ source, output: image, volumes: ['/out'] });
    const listed = await entries(image);
    expectInitLayer(listed);
    expect([...listed.keys()].filter((p) => p.startsWith('/etc/')).sort()).toEqual(['/etc/hostname', '/etc/hosts', '/etc/mtab', '/etc/resolv.conf']);
  });

  it.each([
    ['docker save', makeDockerSave],
    ['OCI layout', makeOciLayout],
  ] as const)('from a %s archive: on top of the last layer', async (label, make) => {
    const archive = join(dir, `${label.replace(' ', '-')}.tar`);
    await writeFile(archive, await make({
      layers: [
        [
          { name: 'etc/', type: 'directory', mode: 0o750, uid: 5, gid: 5 },
          { name: 'etc/hosts', content: '10.0.0.1\tbaked\n', mode: 0o644 },
          { name: 'etc/os-release', content: 'ID=test\n' },
          { name: 'etc/mtab', content: 'regular\n' },
          { name: 'proc', content: 'a file where /proc should be\n' },
        ],
        [{ name: 'etc/resolv.conf', type: 'symlink', linkname: '/run/resolv.conf' }],
      ],
      config: { Volumes: { '/out': {} } },
    }));
    const image = join(dir, `${label.replace(' ', '-')}.gvmi`);
    await buildImage({ source: archive, output: image });
    const listed = await entries(image);
    expectInitLayer(listed);
    expect(cat(image, '/etc/hosts')).toBe('');
    expect(cat(image, '/etc/os-release')).toBe('ID=test\n');
  });
});
