/**
 * Builds seed-debian.gvmi: debootstrap (cached) -> docker-save tarball -> gvmi-test build.
 *
 * Converting Debian takes a while (~20 s here), so the .gvmi is kept beside the cached tarball,
 * by what it is made of: the tarball, and the gvmi-test that converts it (its version and its
 * image code). A second run boots the image it booted before (its VMs restore from a snapshot
 * instead of booting cold); upgrading gvmi-test or changing the tarball converts again.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdtemp, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { buildImage } from 'gvmi-test';

declare module 'vitest' {
  export interface ProvidedContext {
    seedImage: string;
  }
}

/** The tarball (by path, size and mtime) and the installed gvmi-test's image code, hashed. */
async function imageKey(tarball: string): Promise<string> {
  const hash = createHash('sha256');
  const st = await stat(tarball);
  hash.update(JSON.stringify([tarball, st.size, st.mtimeMs]));
  // Where `import 'gvmi-test'` leads from here, as Node resolves it (vitest's module runner has no
  // import.meta.resolve).
  const entry = execFileSync(process.execPath, ['--input-type=module', '-e', "console.log(import.meta.resolve('gvmi-test'))"], { cwd: import.meta.dirname, encoding: 'utf8' }).trim();
  const dist = dirname(fileURLToPath(entry));
  hash.update(await readFile(join(dist, '..', 'package.json')));
  for (const file of (await readdir(join(dist, 'image'), { recursive: true })).filter((f) => f.endsWith('.js')).sort()) {
    hash.update(file).update(await readFile(join(dist, 'image', file)));
  }
  return hash.digest('hex').slice(0, 16);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const tarball = execFileSync('bash', [join(import.meta.dirname, 'make-image.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const cached = join(dirname(tarball), `seed-debian-${await imageKey(tarball)}.gvmi`);
  if (await stat(cached).then((st) => st.isFile(), () => false)) {
    const now = new Date();
    await utimes(cached, now, now); // in use: kept
  } else {
    const partial = `${cached}.partial-${process.pid}`;
    await buildImage({ source: tarball, output: partial });
    // Conversions unused for a week go (another checkout may be using another one right now).
    for (const old of await readdir(dirname(tarball))) {
      const path = join(dirname(tarball), old);
      const st = /^seed-debian-[0-9a-f]{16}\.gvmi$/.test(old) ? await stat(path).catch(() => undefined) : undefined;
      if (st && Date.now() - st.mtimeMs > 7 * 24 * 3600 * 1000) await rm(path, { force: true });
    }
    await rename(partial, cached);
  }
  // The run's own copy, in a directory QEMU (perhaps another user) can reach.
  const dir = await mkdtemp(join(tmpdir(), 'seed-debian-'));
  await chmod(dir, 0o711);
  const image = join(dir, 'seed-debian.gvmi');
  await copyFile(cached, image);
  project.provide('seedImage', image);
  return () => rm(dir, { recursive: true, force: true });
}
