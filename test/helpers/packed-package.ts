/**
 * The package as a user gets it: `npm pack` (its real prepack: a clean TypeScript build and the
 * runtime staged by scripts/stage-runtime.ts) run in a copy of the checkout's sources made at
 * another path, so the live checkout's dist/ (other tests run it) is never rebuilt under them,
 * and nothing of the packing location can hide in the result. Then installed into projects
 * outside the repository, from the tarball alone (npm's cache is warm after `npm ci`).
 *
 * A pack costs 25-45 s, so the test files that need one share it: sharedPackedPackage() packs once
 * per content of the sources and keeps the result under the system's temporary directory, and a
 * second test file (another worker, or the next run) finds it there.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

/** Whether a file of the sources is copied into the packing copy (the checkout's builds are not). */
const copied = (source: string): boolean => !source.startsWith(join(CHECKOUT, 'runtime', '.build'));

/** The packing copy's files, as relative paths, in a stable order. */
async function sourceFiles(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string): Promise<void> => {
    if (!copied(path)) return;
    const st = await stat(path);
    if (!st.isDirectory()) {
      out.push(relative(CHECKOUT, path));
      return;
    }
    for (const name of (await readdir(path)).sort()) await walk(join(path, name));
  };
  for (const entry of SOURCES) await walk(join(CHECKOUT, entry));
  return out;
}

/** What the tarball is made from: every copied file's name and bytes (so an edit packs again). */
async function sourcesHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await sourceFiles()) {
    hash.update(`${file}\0`);
    hash.update(await readFile(join(CHECKOUT, file)));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 24);
}

/** Packs of these sources, shared between test files and runs; each is `<sources hash>/`. */
const SHARED = join(tmpdir(), 'gvmi-test-packed');
/** Older packs kept this long (another checkout's run may be using one), then removed. */
const SHARED_KEEP_MS = 3600 * 1000;
/** A packer that holds the lock this long has died without removing it. */
const STALE_LOCK_MS = 15 * 60 * 1000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The package packed from the checkout's current sources, once: the first caller packs (holding
 * `<hash>.lock`, a directory, made atomically), the others wait for `<hash>/ready.json`. Never
 * remove what it returns: the next test file uses it.
 */
export async function sharedPackedPackage(): Promise<PackedPackage> {
  const hash = await sourcesHash();
  const dir = join(SHARED, hash);
  const ready = join(dir, 'ready.json');
  const lock = `${dir}.lock`;
  await mkdir(SHARED, { recursive: true });
  for (;;) {
    const done = await readFile(ready, 'utf8').catch(() => undefined);
    if (done !== undefined) {
      // Marked as used now, so that removeOldPacks keeps it.
      const now = new Date();
      await utimes(dir, now, now).catch(() => undefined);
      return JSON.parse(done) as PackedPackage;
    }
    try {
      await mkdir(lock);
    } catch {
      // Another test file is packing: wait for it, unless it died holding the lock.
      const owner = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => 'NaN'));
      const age = Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
      if ((Number.isInteger(owner) && !isAlive(owner)) || age > STALE_LOCK_MS) await rm(lock, { recursive: true, force: true });
      else await sleep(1000);
      continue;
    }
    try {
      await writeFile(join(lock, 'pid'), String(process.pid));
      if (await stat(ready).catch(() => undefined)) continue;
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
      const packed = await packPackage(dir);
      await writeFile(`${ready}.tmp`, JSON.stringify(packed));
      await rename(`${ready}.tmp`, ready);
      await removeOldPacks(hash);
      return packed;
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}

/** Packs of other sources, unused for an hour (an edit made them stale). */
async function removeOldPacks(keep: string): Promise<void> {
  for (const name of await readdir(SHARED)) {
    if (name === keep || name.endsWith('.lock')) continue;
    const st = await stat(join(SHARED, name)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > SHARED_KEEP_MS) await rm(join(SHARED, name), { recursive: true, force: true });
  }
}

/** Packs into `into` (a new temporary directory by default), which the caller removes. */
export async function packPackage(into?: string): Promise<PackedPackage> {
  const dir = into ?? await mkdtemp(join(tmpdir(), 'gvmi-pack-'));
  const packedFrom = join(dir, 'sources', 'gvmi-test');
  await mkdir(packedFrom, { recursive: true });
  for (const entry of SOURCES) {
    await cp(join(CHECKOUT, entry), join(packedFrom, entry), {
      recursive: true,
      // The checkout's own build outputs stay behind: the copy builds its own.
      filter: copied,
    });
  }
  // tsc, tsx and the dependencies' types: read from the checkout, never shipped.
  await symlink(join(CHECKOUT, 'node_modules'), join(packedFrom, 'node_modules'));
  const out = join(dir, 'out');
  await mkdir(out);
  const packing = await execa('npm', ['pack', '--pack-destination', out], { cwd: packedFrom, env: cleanEnv(), all: true, reject: false });
  const [tgz] = (await readdir(out)).filter((f) => f.endsWith('.tgz'));
  if (packing.exitCode !== 0 || !tgz) {
    if (into === undefined) await rm(dir, { recursive: true, force: true });
    // prepack's own words (tsc's errors, build.sh's) say why.
    throw new Error(`npm pack failed (exit ${packing.exitCode}):\n${String(packing.all).split('\n').slice(-40).join('\n')}`);
  }
  return { tarball: join(out, tgz), packedFrom, dir };
}

/**
 * A fresh project outside the repository with the tarball installed (and `alsoInstall`, such as
 * `vitest@4.1.12`, from npm's cache where it can); returns its directory.
 */
export async function installPackage(tarball: string, where: string, alsoInstall: readonly string[] = []): Promise<string> {
  const project = join(where, 'project');
  await mkdir(project, { recursive: true });
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'scratch-project', private: true, type: 'module' }, null, 2));
  await execa('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, ...alsoInstall], { cwd: project, env: cleanEnv(), stdout: 'ignore', stderr: 'pipe' });
  return project;
}
