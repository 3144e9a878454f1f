/** Builds seed-debian.gvmi: debootstrap (cached) -> docker-save tarball -> gvmi-test build. */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildImage } from 'gvmi-test';

declare module 'vitest' {
  export interface ProvidedContext {
    seedImage: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const tarball = execFileSync('bash', [join(import.meta.dirname, 'make-image.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const dir = await mkdtemp(join(tmpdir(), 'seed-debian-'));
  await chmod(dir, 0o711);
  const image = join(dir, 'seed-debian.gvmi');
  await buildImage({ source: tarball, output: image });
  project.provide('seedImage', image);
  return () => rm(dir, { recursive: true, force: true });
}
