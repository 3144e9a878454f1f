/**
 * The package as a user gets it: `npm pack` (its real prepack: a clean TypeScript build and the
 * runtime staged by scripts/stage-runtime.ts) run in a copy of the checkout's sources made at
 * another path, so the live checkout's dist/ (other tests run it) is never rebuilt under them,
 * and nothing of the packing location can hide in the result. Then installed into projects
 * outside the repository, from the tarball alone (npm's cache is warm after `npm ci`).
 */
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';

const CHECKOUT = resolve(import.meta.dirname, '..', '..');
/** What prepack needs: the sources, the runtime sources, the build configuration. */
const SOURCES = ['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'tsconfig.build.json', 'src', 'docs', 'scripts', 'runtime'];

export interface PackedPackage {
  /** The .tgz. */
  tarball: string;
  /** The copy it was packed from (its runtime/.build is the copy's own build). */
  packedFrom: string;
  /** Everything of this packing lives under here. */
  dir: string;
}

/** An environment without the checkout's runtime overrides. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, ...extra };
  for (const name of ['GVMI_TEST_RUNTIME', 'GVMI_TEST_KERNEL', 'GVMI_TEST_INITRAMFS']) delete env[name];
  return env;
}

export async function packPackage(): Promise<PackedPackage> {
  const dir = await mkdtemp(join(tmpdir(), 'gvmi-pack-'));
  const packedFrom = join(dir, 'sources', 'gvmi-test');
  await mkdir(packedFrom, { recursive: true });
  for (const entry of SOURCES) {
    await cp(join(CHECKOUT, entry), join(packedFrom, entry), {
      recursive: true,
      // The checkout's own build outputs stay behind: the copy builds its own.
      filter: (source) => !source.startsWith(join(CHECKOUT, 'runtime', '.build')),
    });
  }
  // tsc, tsx and the dependencies' types: read from the checkout, never shipped.
  await symlink(join(CHECKOUT, 'node_modules'), join(packedFrom, 'node_modules'));
  const out = join(dir, 'out');
  await mkdir(out);
  const packing = await execa('npm', ['pack', '--pack-destination', out], { cwd: packedFrom, env: cleanEnv(), all: true, reject: false });
  const [tgz] = (await readdir(out)).filter((f) => f.endsWith('.tgz'));
  if (packing.exitCode !== 0 || !tgz) {
    await rm(dir, { recursive: true, force: true });
    // prepack's own words (tsc's errors, build.sh's) say why.
    throw new Error(`npm pack failed (exit ${packing.exitCode}):\n${String(packing.all).split('\n').slice(-40).join('\n')}`);
  }
  return { tarball: join(out, tgz), packedFrom, dir };
}

/** A fresh project outside the repository with the tarball installed; returns its directory. */
export async function installPackage(tarball: string, where: string): Promise<string> {
  const project = join(where, 'project');
  await mkdir(project, { recursive: true });
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'scratch-project', private: true, type: 'module' }, null, 2));
  await execa('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: project, env: cleanEnv(), stdout: 'ignore', stderr: 'pipe' });
  return project;
}
