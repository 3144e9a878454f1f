/**
 * CLI start-up loads only what it needs: `gvmi-test --version` and `--help` run the built CLI in
 * a child Node that records every module it loads (ESM through a module.register load hook,
 * CommonJS from require.cache at exit), and the npm packages among them must be exactly the
 * allow-list. No timing is asserted: a heavy package loaded at start-up (execa, pino, ws,
 * tar-stream, tmp-promise, vitest…) is what made every command slow (`setup` importing execa at
 * the top: --version 0.17 -> 0.25 s), and it shows here as an extra package name. A command's
 * heavy dependencies are imported inside the function that needs them
 * (`await import('execa')`, as src/cli/commands/setup.ts does).
 *
 * Runs dist/ as a user does (`make test` builds it first, as for error-path.test.ts); a dist/
 * older than the sources it was built from fails with the fix, rather than testing old code.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve('.');
const cli = join(root, 'dist/cli/main.js');

/**
 * The npm packages the CLI may load before it knows which command runs. commander parses the
 * command line, so every invocation needs it; anything else belongs inside a command's action.
 */
const STARTUP_PACKAGES = ['commander'];

/** Named so a failure says which mistake it is; the allow-list above already excludes them. */
const HEAVY_PACKAGES = ['execa', 'pino', 'thread-stream', 'ws', 'tar-stream', 'tmp-promise', 'vitest', 'tsx', 'esbuild'];

let dir: string;
let recorder: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-startup-imports-'));
  recorder = join(dir, 'record-modules.mjs');
  // Loaded by `node --import` before the CLI: the load hook runs on Node's hooks thread and
  // appends each ESM URL (a CommonJS package imported from ESM passes through it too); the
  // CommonJS modules those require are in require.cache when the process exits.
  const hook = `
    import { appendFileSync } from 'node:fs';
    export async function load(url, context, nextLoad) {
      appendFileSync(process.env.GVMI_TEST_MODULES_OUT, url + '\\n');
      return nextLoad(url, context);
    }`;
  await writeFile(recorder, `
    import { appendFileSync } from 'node:fs';
    import { createRequire, register } from 'node:module';
    import { pathToFileURL } from 'node:url';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
    const require = createRequire(import.meta.url);
    process.on('exit', () => {
      const files = Object.keys(require.cache).map((f) => pathToFileURL(f).href + '\\n');
      appendFileSync(process.env.GVMI_TEST_MODULES_OUT, files.join(''));
    });
  `);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Loaded {
  stdout: string;
  /** Package names from node_modules, sorted. */
  packages: string[];
  /** This project's modules, relative to the checkout (`dist/cli/program.js`). */
  own: string[];
}

/** The package a file under node_modules belongs to (`@scope/name` or `name`), from the last node_modules in its path. */
function packageOf(file: string): string | undefined {
  const parts = file.split(sep);
  const at = parts.lastIndexOf('node_modules');
  if (at < 0) return undefined;
  const name = parts[at + 1];
  if (name === undefined) return undefined;
  return name.startsWith('@') ? `${name}/${parts[at + 2] ?? ''}` : name;
}

async function loadedBy(args: string[]): Promise<Loaded> {
  await stat(cli).catch(() => {
    throw new Error(`${relative(root, cli)} is missing: run \`npm run build\` (make test does)`);
  });
  const out = join(dir, `${args.join('_')}.txt`);
  const { stdout } = await run(process.execPath, ['--import', recorder, cli, ...args], {
    env: { ...process.env, GVMI_TEST_MODULES_OUT: out },
  });
  const urls = new Set((await readFile(out, 'utf8')).split('\n').filter((u) => u.startsWith('file:')));
  const files = [...urls].map((u) => fileURLToPath(u));
  const packages = [...new Set(files.map(packageOf).filter((p) => p !== undefined))].sort();
  const own = files.filter((f) => packageOf(f) === undefined && f.startsWith(root + sep)).map((f) => relative(root, f)).sort();
  // dist/ must be built from the sources as they are, or this tests yesterday's imports.
  const stale: string[] = [];
  for (const file of own.filter((f) => f.startsWith(`dist${sep}`) && f.endsWith('.js'))) {
    const source = join(root, 'src', relative('dist', file).replace(/\.js$/, '.ts'));
    const [built, written] = await Promise.all([stat(join(root, file)), stat(source).catch(() => undefined)]);
    if (written !== undefined && written.mtimeMs > built.mtimeMs) stale.push(relative(root, source));
  }
  if (stale.length > 0) throw new Error(`dist/ is older than ${stale.join(', ')}: run \`npm run build\` (make test does)`);
  return { stdout, packages, own };
}

describe('CLI start-up loads no package it does not need', () => {
  it.each([
    [['--version'], /^\d+\.\d+\.\d+\n$/],
    [['--help'], /^Usage: gvmi-test /],
  ])('%j loads commander and nothing else from node_modules', async (args, output) => {
    const loaded = await loadedBy(args);
    expect(loaded.stdout).toMatch(output);
    // The recorder saw the CLI itself: an empty record would pass the checks below.
    expect(loaded.own).toContain(join('dist', 'cli', 'program.js'));
    expect(loaded.own).toContain(join('dist', 'cli', 'commands', 'setup.js'));
    expect(loaded.packages.filter((p) => HEAVY_PACKAGES.includes(p)), 'heavy packages loaded at start-up: import them inside the command that uses them').toEqual([]);
    expect(loaded.packages, 'packages loaded at start-up (STARTUP_PACKAGES is the allow-list)').toEqual(STARTUP_PACKAGES);
  });
});
