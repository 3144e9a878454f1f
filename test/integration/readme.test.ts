/**
 * The README is tested (issue 14), as a user meets it: the packed tarball (shared with
 * package.test.ts) installed into a scratch project outside the repository, where
 * `npx gvmi-test doctor`, `build` and `run` work; then every fenced code block of README.md and
 * docs/*.md runs there as written — shell blocks with the installed `gvmi-test` on PATH, TypeScript
 * compiled (strict, nothing downlevelled) and run by this Node (the lowest major `engines` allows),
 * blocks importing gvmi-test/vitest as one vitest suite — unless the line before it is
 * `<!-- not-run: REASON -->` (CONTRIBUTING.md). A new block that is neither fails here.
 *
 * The blocks name `my-image.gvmi` (and docs/fidelity.md `image.gvmi`): built here by the installed
 * `gvmi-test build` from a busybox root filesystem with the files the examples use.
 */
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { blockFileName, docBlocks, type DocBlock } from '../helpers/doc-blocks.js';
import { cleanEnv, installPackage, sharedPackedPackage } from '../helpers/packed-package.js';

const CHECKOUT = resolve(import.meta.dirname, '..', '..');
const blocks = docBlocks(CHECKOUT);
const runs = (b: DocBlock): boolean => b.notRun === undefined && b.badMarker === undefined && b.kind !== 'unknown';
const where = (b: DocBlock): string => `${b.file}:${b.line}`;
const scripts = blocks.filter((b) => runs(b) && b.kind === 'script');
const shells = blocks.filter((b) => runs(b) && b.kind === 'shell');
const suites = blocks.filter((b) => runs(b) && b.kind === 'vitest');

/** The checkout's own versions: npm's cache has them after `npm ci`. */
const versionOf = (name: string): string => (JSON.parse(readFileSync(join(CHECKOUT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let project: string;

/** The environment of a user's shell in the project: `gvmi-test` and `vitest` are the project's. */
function projectEnv(): Record<string, string | undefined> {
  const env = cleanEnv({ PATH: `${join(project, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}` });
  // The outer vitest's variables would make the project's vitest think it runs inside a worker.
  for (const name of Object.keys(env)) if (name.startsWith('VITEST') || name === 'TEST' || name === 'NODE_ENV') delete env[name];
  return env;
}

/** The image the examples use: its own script, config and self-test, volumes as the seed's. */
async function makeExampleRootfs(root: string): Promise<void> {
  await makeBusyboxRootfs(root);
  await rm(join(root, 'golem/input/baked.txt'));
  await mkdir(join(root, 'app'));
  await writeFile(join(root, 'app/process.sh'), [
    '#!/bin/sh',
    '# Counts the rows of a CSV (header excluded) and writes a summary to the output volume.',
    'set -e',
    'rows=$(($(wc -l < "$1") - 1))',
    'echo "processed $rows rows"',
    'echo "{\\"rows\\": $rows}" > /golem/output/result.json',
    '',
  ].join('\n'));
  // Sets what it needs itself: runtime 0.5 starts it with an empty environment.
  await writeFile(join(root, 'app/run.sh'), '#!/bin/sh\nexport PATH=/bin\n[ "$1" = --self-test ] && ls / >/dev/null && echo ok\n');
  await chmod(join(root, 'app/process.sh'), 0o755);
  await chmod(join(root, 'app/run.sh'), 0o755);
  await writeFile(join(root, 'app/config.yaml'), 'rows: csv\n');
}

beforeAll(async () => {
  const packed = await sharedPackedPackage();
  work = await mkdtemp(join(tmpdir(), 'gvmi-readme-'));
  project = await installPackage(packed.tarball, work, [`vitest@${versionOf('vitest')}`, `typescript@${versionOf('typescript')}`, `@types/node@${versionOf('@types/node')}`]);
  await makeExampleRootfs(join(work, 'my-image-rootfs'));
  const csv = 'name,count\napples,3\npears,5\nplums,7\n';
  for (const dir of ['data', 'fixtures']) {
    await mkdir(join(project, dir));
    await writeFile(join(project, dir, 'input.csv'), csv);
  }
  for (const block of [...scripts, ...suites]) {
    await writeFile(join(project, `${blockFileName(block)}${block.kind === 'vitest' ? '.test' : ''}.ts`), block.code);
  }
  // Strict, and target ESNext: syntax stays as written, so what this Node cannot parse fails here.
  await writeFile(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ESNext', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'build', types: ['node'], skipLibCheck: false },
    include: ['*.ts'],
  }, null, 2));
  await writeFile(join(project, 'vitest.config.mjs'), "export default { test: { include: ['*.test.ts'] } };\n");
}, 600_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('a project that installed the packed tarball', () => {
  it('has gvmi-test from the tarball, and no link into the checkout', async () => {
    expect(relative(CHECKOUT, project).startsWith('..')).toBe(true);
    const bin = (await execa('bash', ['-c', 'command -v gvmi-test'], { cwd: project, env: projectEnv() })).stdout;
    expect(await realpath(bin)).toBe(join(await realpath(project), 'node_modules/gvmi-test/dist/cli/main.js'));
    const links = (await execa('find', [project, '-type', 'l'])).stdout.split('\n').filter(Boolean);
    const intoCheckout: string[] = [];
    for (const link of links) {
      const target = await realpath(link).catch(() => link);
      if (!relative(CHECKOUT, target).startsWith('..')) intoCheckout.push(`${link} -> ${target}`);
    }
    expect(intoCheckout).toEqual([]);
  });

  it('npx gvmi-test doctor: ready, with the runtime the package ships', async () => {
    const r = await execa('npx', ['gvmi-test', 'doctor'], { cwd: project, env: projectEnv(), reject: false });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/ok\s+guest runtime: .*shipped in the package/);
  });

  it('npx gvmi-test build: the image the examples name', async () => {
    const r = await execa('npx', ['gvmi-test', 'build', join(work, 'my-image-rootfs'), '-o', 'my-image.gvmi', '--volume', '/golem/input', '--volume', '/golem/output', '--env', 'PATH=/bin'], { cwd: project, env: projectEnv(), reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await stat(join(project, 'my-image.gvmi'))).size).toBeGreaterThan(0);
    // docs/fidelity.md's example names it image.gvmi.
    await copyFile(join(project, 'my-image.gvmi'), join(project, 'image.gvmi'));
  }, 120_000);

  it('npx gvmi-test run: a command in the image', async () => {
    // The guest command's status is the run's, as a requestor sees it.
    const r = await execa('npx', ['gvmi-test', 'run', 'my-image.gvmi', '--', '/bin/sh', '-c', 'echo to stderr >&2; exit 3'], { cwd: project, env: projectEnv(), reject: false });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toContain('to stderr');
    const ok = await execa('npx', ['gvmi-test', 'run', 'my-image.gvmi', '--', '/bin/echo', 'hello from the package'], { cwd: project, env: projectEnv(), reject: false });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('hello from the package');
  }, 180_000);
});

describe('the code blocks of README.md and docs/', () => {
  it('each runs in this test or is marked <!-- not-run: REASON -->', () => {
    const unmarked = blocks.filter((b) => b.badMarker === undefined && b.notRun === undefined && b.kind === 'unknown').map((b) => `${where(b)} (\`\`\`${b.lang}: not a kind this test runs)`);
    const badMarkers = blocks.filter((b) => b.badMarker !== undefined).map((b) => `${where(b)}: ${b.badMarker} (give a reason: <!-- not-run: REASON -->)`);
    expect([...unmarked, ...badMarkers]).toEqual([]);
    // The parser still finds what the README is made of.
    expect(scripts.map((b) => b.file)).toContain('README.md');
    expect(suites.filter((b) => b.file === 'README.md').length).toBeGreaterThanOrEqual(3);
    expect(shells.length).toBeGreaterThanOrEqual(1);
  });

  // On a developer's newer Node the blocks still run, but syntax Node 20 lacks would pass unseen:
  // CI (which must run the lowest Node) fails then; elsewhere the check is skipped, visibly.
  const lowestNode = /^>=\s*(\d+)/.exec((JSON.parse(readFileSync(join(CHECKOUT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node)?.[1];
  const onLowestNode = process.versions.node.split('.')[0] === lowestNode;
  it.skipIf(!onLowestNode && !process.env['CI'])(`run on the lowest Node major that package.json engines allows (skipped outside CI on Node ${process.versions.node}: not ${lowestNode ?? '?'})`, () => {
    const lowest = lowestNode;
    expect(lowest, 'engines.node starts with >=N').toBeDefined();
    // This Node runs the compiled blocks; on a newer one, syntax Node 20 lacks would pass unseen.
    expect(process.versions.node.split('.')[0], `run make test with Node ${lowest}`).toBe(lowest);
  });

  it('the TypeScript blocks compile: strict, nothing downlevelled', async () => {
    const r = await execa(join(project, 'node_modules/.bin/tsc'), ['-p', '.'], { cwd: project, env: projectEnv(), reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
  }, 120_000);

  for (const block of scripts) {
    it(`${where(block)} runs`, async () => {
      const r = await execa(process.execPath, [join('build', `${blockFileName(block)}.js`)], { cwd: project, env: projectEnv(), reject: false, all: true });
      expect(r.exitCode, r.all).toBe(0);
    }, 180_000);
  }

  for (const block of shells) {
    it(`${where(block)} runs`, async () => {
      const r = await execa('bash', ['-e', '-o', 'pipefail', '-c', block.code], { cwd: project, env: projectEnv(), reject: false, all: true });
      expect(r.exitCode, r.all).toBe(0);
    }, 300_000);
  }

  describe('the vitest blocks, as one suite in the project', () => {
    let report: { testResults: { name: string; status: string; message?: string; assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[] } | undefined;
    let output = '';

    beforeAll(async () => {
      const out = join(work, 'vitest.json');
      const r = await execa(join(project, 'node_modules/.bin/vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`], { cwd: project, env: projectEnv(), reject: false, all: true });
      output = String(r.all);
      report = JSON.parse(await readFile(out, 'utf8').catch(() => 'null')) as typeof report;
    }, 600_000);

    for (const block of suites) {
      it(`${where(block)} passes`, () => {
        const file = report?.testResults.find((f) => f.name.endsWith(`/${blockFileName(block)}.test.ts`));
        expect(file, output).toBeDefined();
        const failed = file!.assertionResults.filter((t) => t.status !== 'passed').map((t) => `${t.fullName}: ${t.status} ${t.failureMessages.join('\n')}`);
        expect(failed, file!.message ?? output).toEqual([]);
        expect(file!.status).toBe('passed');
        expect(file!.assertionResults.length).toBeGreaterThan(0);
      });
    }
  });
});
