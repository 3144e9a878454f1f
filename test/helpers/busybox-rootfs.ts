/**
 * The tiny test image: busybox-static and the seed's layout (VOLUME /golem/input /golem/output,
 * WORKDIR /golem/work), with a file baked under /golem/input to show shadowing. No Docker.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const BUSYBOX = '/bin/busybox';

export async function makeBusyboxRootfs(root: string): Promise<void> {
  for (const dir of ['bin', 'etc', 'root', 'tmp', 'golem/input', 'golem/output', 'golem/work', 'golem/resources']) {
    await mkdir(join(root, dir), { recursive: true });
  }
  await copyFile(BUSYBOX, join(root, 'bin/busybox'));
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const applet of applets) await symlink('busybox', join(root, 'bin', applet));
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(join(root, 'golem/input/baked.txt'), 'baked into the image\n');
  await writeFile(join(root, 'golem/resources/static.txt'), 'a static resource\n');
}

export const TINY_IMAGE_SETTINGS = {
  volumes: ['/golem/input', '/golem/output'],
  workdir: '/golem/work',
  env: ['PATH=/bin', 'GREETING=hello from the image'],
  entrypoint: ['/bin/sh', '-c', 'echo entrypoint-ran > /golem/output/entrypoint'],
  cmd: ['echo', 'cmd-ran'],
};
