import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listSquashfs } from '../../../src/image/squashfs-listing.js';
import { buildImage } from '../../../src/image/build-image.js';
import { inspectImage } from '../../../src/image/inspect-image.js';
import { runCli } from '../../../src/cli/program.js';
import { shadowedPaths } from '../../../src/vm/shadowed-paths.js';
import { memoPath, writeMemo } from '../../../src/memo.js';

/**
 * File names may hold any byte but "/" and NUL; unsquashfs prints them raw. These would split a
 * line-by-line parse ("\n") or fall outside `.` in a regex ("\r", U+2028).
 */
const HOSTILE_NAMES = ['evil\nname', 'a\rb', 'line\u2028separator', 'trailing newline\n'];
/**
 * A directory and a file whose joined path prints as a second listing line, down to the old
 * fixed "squashfs-root" prefix: read line by line, it forged an entry for "/" (a regular file).
 */
const FORGING_DIR = 'f\n-rw-r--r-- 0';
const FORGING_FILE = `${FORGING_DIR}/0 1 2026-01-01 00:00 squashfs-root`;

let dir: string;
let tree: string;
let gvmi: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-listing-'));
  tree = join(dir, 'tree');
  await mkdir(join(tree, 'etc'), { recursive: true });
  await mkdir(join(tree, 'vol'));
  await writeFile(join(tree, 'vol/plain.txt'), 'ordinary\n');
  for (const name of HOSTILE_NAMES) await writeFile(join(tree, 'vol', name), 'x');
  await mkdir(join(tree, 'vol', FORGING_DIR));
  await writeFile(join(tree, 'vol', FORGING_FILE), 'x');
  await symlink('tar -> get', join(tree, 'vol/li -> nk'));
  gvmi = join(dir, 'hostile-names.gvmi');
  await buildImage({ source: tree, output: gvmi, volumes: ['/vol'] });
});

afterAll(() => rm(dir, { recursive: true, force: true }));

const savedCache = process.env['GVMI_TEST_CACHE'];
afterEach(() => {
  if (savedCache === undefined) delete process.env['GVMI_TEST_CACHE'];
  else process.env['GVMI_TEST_CACHE'] = savedCache;
});

/** Files (not directories) under /vol: what a volume there shadows. */
const expectedUnderVol = ['/vol/plain.txt', '/vol/li -> nk', ...HOSTILE_NAMES.map((n) => `/vol/${n}`), `/vol/${FORGING_FILE}`].sort();

describe('squashfs listing', () => {
  it('lists every file, whatever bytes its name holds, and nothing that is not there', async () => {
    const image = join(dir, 'fs.sqfs');
    execFileSync('mksquashfs', [tree, image, '-noappend', '-quiet', '-no-progress', '-all-root']);
    const entries = await listSquashfs(image);
    expect(entries.map((e) => e.path).sort()).toEqual(['/', '/etc', '/vol', `/vol/${FORGING_DIR}`, ...expectedUnderVol].sort());
    expect(entries.filter((e) => e.path === '/').map((e) => e.type)).toEqual(['dir']);
    expect(entries.find((e) => e.path === '/vol/evil\nname')).toMatchObject({ type: 'file', size: 1, mode: '-rw-r--r--' });
    // a symlink's name and target may both contain " -> ": split by the target's length
    expect(entries.find((e) => e.type === 'symlink')).toMatchObject({ path: '/vol/li -> nk', linkTarget: 'tar -> get' });
  });

  it('reports every such file under a volume as shadowed, escaped when printed', async () => {
    const inspection = await inspectImage(gvmi);
    expect(inspection.shadowed.map((e) => e.path).sort()).toEqual(expectedUnderVol);
    expect(inspection.findings.find((f) => f.code === 'shadowed-files')?.paths?.sort()).toEqual(expectedUnderVol);

    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    stdout.on('data', (d: Buffer) => { out += d.toString(); });
    expect(await runCli(['inspect', gvmi], { stdout, stderr, stdin: new PassThrough() })).toBe(0);
    const listed = out.split('\n').filter((l) => l.startsWith('    /vol/'));
    expect(listed.sort()).toEqual([
      '    /vol/a\\rb',
      '    /vol/evil\\nname',
      '    /vol/f\\n-rw-r--r-- 0/0 1 2026-01-01 00:00 squashfs-root',
      '    /vol/li -> nk',
      '    /vol/line\u2028separator',
      '    /vol/plain.txt',
      '    /vol/trailing newline\\n',
    ]);
  });

  it('does not reuse what the older listing remembered for an image (it had missed these names)', async () => {
    process.env['GVMI_TEST_CACHE'] = join(dir, 'cache');
    const { image } = await inspectImage(gvmi);
    await writeMemo(memoPath('shadowed', ['some-digest', ['/vol']]), JSON.stringify(['/vol/evil', '/vol/li', '/vol/plain.txt']));
    expect((await shadowedPaths(gvmi, image.metadata, ['/vol'], 'some-digest')).sort()).toEqual(expectedUnderVol);
  });
});
