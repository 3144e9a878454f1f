/**
 * `npm pack` makes a package that carries its guest (issue 14): the tarball holds the runtime,
 * the docs the README cites and the sources the maps name, and no path of the packing machine;
 * installed in a project outside the repository it finds its runtime (unpacked into the cache)
 * and `gvmi-test setup` boots it. The init's hash is the same wherever its sources are.
 */
import { cp, mkdtemp, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, installPackage, sharedPackedPackage, type PackedPackage } from '../helpers/packed-package.js';

let packed: PackedPackage;
/** This file's own: the unpacked tarball, the project, its cache (the tarball is shared). */
let work: string;
let unpacked: string;
let project: string;
let cache: string;

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...await walk(path));
    else out.push(path);
  }
  return out;
}

function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value && typeof value === 'object') return Object.values(value).flatMap(stringsIn);
  return [];
}

beforeAll(async () => {
  packed = await sharedPackedPackage();
  work = await mkdtemp(join(tmpdir(), 'gvmi-package-test-'));
  unpacked = join(work, 'unpacked');
  await execa('mkdir', ['-p', unpacked]);
  await execa('tar', ['-xzf', packed.tarball, '-C', unpacked]);
  // A cache of its own: the runtime must come out of the package, not from an earlier run.
  cache = join(work, 'cache');
  project = await installPackage(packed.tarball, work);
}, 600_000);

const elsewhere: string[] = [];
afterAll(async () => {
  // The shared pack stays for the other test files that use it.
  for (const dir of [work, ...elsewhere]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the runtime its manifest names, the docs, the sources its maps name; no checkout-only files', async () => {
    const pkg = join(unpacked, 'package');
    const files = (await walk(pkg)).map((f) => relative(pkg, f));
    const manifest = JSON.parse(await readFile(join(pkg, 'dist/runtime/manifest.json'), 'utf8')) as { runtimeHash: string; files: Record<string, { path: string; bytes: number }> };
    expect(Object.keys(manifest.files).sort()).toEqual(['initramfs', 'kernel', 'tscKhzTool']);
    for (const file of Object.values(manifest.files)) {
      expect(files).toContain(join('dist/runtime', file.path));
      expect(file.path.startsWith(`${manifest.runtimeHash}/`)).toBe(true);
    }
    for (const doc of ['README.md', 'docs/diagnostics.md', 'docs/ws-protocol.md', 'docs/fidelity.md', 'docs/reliability.md', 'dist/cli/main.js', 'dist/index.d.ts']) expect(files).toContain(doc);
    expect(files.filter((f) => f.startsWith('runtime/') || f === 'Makefile' || f.startsWith('test/') || f.startsWith('scripts/'))).toEqual([]);
    const maps = files.filter((f) => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(10);
    for (const map of maps) {
      const { sources } = JSON.parse(await readFile(join(pkg, map), 'utf8')) as { sources: string[] };
      for (const source of sources) expect(files, `${map} names ${source}`).toContain(relative(pkg, resolve(pkg, dirname(map), source)));
    }
    // Compressed where that pays: the 17 MiB kernel ships as under 4 MiB.
    expect(manifest.files['kernel']!.bytes).toBeGreaterThan(8 << 20);
    expect((await stat(packed.tarball)).size).toBeLessThan(8 << 20);
  });

  it('no shipped JSON holds an absolute path, and no shipped text names where it was packed or the cache', async () => {
    const pkg = join(unpacked, 'package');
    const forbidden = [packed.packedFrom, packed.dir, work, resolve(import.meta.dirname, '..', '..'), join(homedir(), '.cache'), '/root/'];
    for (const file of await walk(pkg)) {
      if (file.endsWith('.br')) continue;
      const text = await readFile(file, 'utf8');
      for (const path of forbidden) expect(text.includes(path), `${relative(pkg, file)} names ${path}`).toBe(false);
      if (file.endsWith('.json')) {
        for (const s of stringsIn(JSON.parse(text))) expect(s.startsWith('/'), `${relative(pkg, file)}: ${s}`).toBe(false);
      }
    }
  });
});

describe('installed in a project outside the repository', () => {
  const env = (): Record<string, string | undefined> => cleanEnv({ GVMI_TEST_CACHE: cache });

  it('the project has the package, not a link to the checkout', async () => {
    const installed = join(project, 'node_modules', 'gvmi-test');
    expect((await stat(installed)).isDirectory()).toBe(true);
    expect(relative(resolve(import.meta.dirname, '..', '..'), project).startsWith('..')).toBe(true);
  });

  it('doctor finds the runtime shipped in the package, unpacked into the cache', async () => {
    const r = await execa('npx', ['gvmi-test', 'doctor', '--json'], { cwd: project, env: env(), reject: false });
    const report = JSON.parse(r.stdout) as { canRun: boolean; checks: { name: string; ok: boolean; detail: string; fix?: string }[] };
    const runtime = report.checks.find((c) => c.name === 'guest runtime')!;
    expect(runtime, r.stdout).toMatchObject({ ok: true });
    expect(runtime.detail).toMatch(/shipped in the package/);
    expect(runtime.detail).toContain(join(cache, 'runtime-shipped'));
    expect(report.canRun).toBe(true);
    expect(r.exitCode).toBe(0);
  });

  it("doctor's fixes name npx gvmi-test setup there, not make", async () => {
    // A PATH with node but no QEMU and no squashfs-tools.
    const bin = await mkdtemp(join(work, 'bin-'));
    await symlink(process.execPath, join(bin, 'node'));
    const r = await execa(process.execPath, [join(project, 'node_modules/gvmi-test/dist/cli/main.js'), 'doctor', '--json'], { cwd: project, env: { ...env(), PATH: bin }, reject: false });
    expect(r.exitCode).toBe(69);
    const report = JSON.parse(r.stdout) as { checks: { name: string; fix?: string }[] };
    expect(report.checks.find((c) => c.name === 'QEMU')?.fix).toMatch(/^npx gvmi-test setup/);
    expect(report.checks.find((c) => c.name === 'squashfs-tools')?.fix).toMatch(/^npx gvmi-test setup/);
    expect(r.stdout).not.toMatch(/make (deps|runtime)/);
  });

  it('setup --yes --json: nothing to install here, the shipped runtime boots', async () => {
    const r = await execa('npx', ['gvmi-test', 'setup', '--yes', '--json'], { cwd: project, env: env(), reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; missing: string[]; runtime: { source: string; kernel: string }; boot: { accelerator: string; bootMs: number; overlayTotalBytes: number } };
    expect(report).toMatchObject({ ok: true, missing: [], runtime: { source: 'package' } });
    expect(report.runtime.kernel.startsWith(join(cache, 'runtime-shipped'))).toBe(true);
    expect(report.boot.overlayTotalBytes).toBe(128 << 20);
  }, 180_000);
});

describe('the init and tool hashes', () => {
  it('are the same for the runtime sources at two different paths (the packing copy and another)', async () => {
    const top = await mkdtemp(join(tmpdir(), 'gvmi-runtime-elsewhere-'));
    elsewhere.push(top);
    const other = join(top, 'deeper', 'runtime');
    await cp(join(packed.packedFrom, 'runtime'), other, { recursive: true, filter: (s) => !s.includes('/.build') });
    await execa('bash', [join(other, 'build.sh')], { env: cleanEnv() });
    const a = JSON.parse(await readFile(join(packed.packedFrom, 'runtime/.build/runtime.json'), 'utf8')) as Record<string, string>;
    const b = JSON.parse(await readFile(join(other, '.build/runtime.json'), 'utf8')) as Record<string, string>;
    expect(b['initHash']).toBe(a['initHash']);
    expect(b['runtimeHash']).toBe(a['runtimeHash']);
    expect(b['tscKhzTool']).toBe(a['tscKhzTool']);
  }, 120_000);
});
