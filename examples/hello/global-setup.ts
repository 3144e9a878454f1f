/** Builds hello.gvmi once for the suite (no Docker: a busybox root filesystem + gvmi-test build). */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildImage } from 'gvmi-test';

declare module 'vitest' {
  export interface ProvidedContext {
    helloImage: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'hello-example-'));
  await chmod(dir, 0o711);
  execFileSync('bash', [join(import.meta.dirname, 'make-rootfs.sh'), join(dir, 'rootfs')]);
  const image = join(dir, 'hello.gvmi');
  await buildImage({
    source: join(dir, 'rootfs'), output: image,
    volumes: ['/golem/input', '/golem/output'], workdir: '/golem/work', env: ['PATH=/bin', 'GREETING=hello'],
  });
  project.provide('helloImage', image);
  return () => rm(dir, { recursive: true, force: true });
}
