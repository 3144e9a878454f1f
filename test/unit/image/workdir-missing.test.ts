/**
 * A WORKDIR the image does not have: a provider runs every command there and answers each with
 * exit code 9. `inspect` and `build` say so before anything runs (`workdir-missing`).
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataOf, type ContainerConfig } from '../../../src/image/container-config.js';
import type { SquashfsEntry } from '../../../src/image/squashfs-listing.js';
import { resolveImageDir, staticFindings } from '../../../src/image/static-findings.js';
import { buildImage } from '../../../src/image/build-image.js';
import { inspectImage } from '../../../src/image/inspect-image.js';
import { runCli } from '../../../src/cli/program.js';
import { minimalRootfs } from '../../helpers/raw-gvmi.js';
import { capture } from '../../helpers/capture-io.js';

const entry = (path: string, type: SquashfsEntry['type'] = 'dir', linkTarget?: string): SquashfsEntry => ({
  path, type, mode: '', uid: 0, gid: 0, size: linkTarget?.length ?? 0, ...(linkTarget !== undefined ? { linkTarget } : {}),
});
const base = [entry('/'), entry('/etc'), entry('/proc'), entry('/sys'), entry('/bin'), entry('/bin/sh', 'file')];
const codes = (config: ContainerConfig, entries: SquashfsEntry[]): string[] =>
  staticFindings(metadataOf({ Volumes: { '/golem/input': {} }, ...config }), entries, 1e6).map((f) => f.code);

describe('workdir-missing', () => {
  it('a WORKDIR the image lacks is an error that names it, exit code 9 and the fix', () => {
    const findings = staticFindings(metadataOf({ Volumes: { '/out': {} }, WorkingDir: '/app' }), base, 1e6);
    expect(findings.map((f) => f.code)).toEqual(['workdir-missing']);
    const f = findings[0]!;
    expect(f.severity).toBe('error');
    expect(f.message).toMatch(/^WORKDIR \/app does not exist \(the image has no such directory\)/);
    expect(f.message).toMatch(/exit code 9/);
    expect(f.fix).toMatch(/mkdir -p \/app/);
    expect(f.paths).toEqual(['/app']);
  });

  it.each([
    ['exists', '/bin', base, []],
    ['unset (/)', '', base, []],
    ['relative, as chdir after chdir("/")', 'bin', base, []],
    ['a parent is missing', '/srv/app', base, ['workdir-missing']],
    ['a file, not a directory', '/bin/sh', base, ['workdir-missing']],
    ['through an absolute symlink to a directory', '/app', [...base, entry('/srv'), entry('/srv/app'), entry('/app', 'symlink', '/srv/app')], []],
    ['through a relative symlink in the middle', '/opt/app/data', [...base, entry('/srv'), entry('/srv/app'), entry('/srv/app/data'), entry('/opt', 'symlink', 'srv')], []],
    ['through a dangling symlink', '/app', [...base, entry('/app', 'symlink', '/nowhere')], ['workdir-missing']],
    ['through a symlink loop', '/a', [...base, entry('/a', 'symlink', '/b'), entry('/b', 'symlink', '/a')], ['workdir-missing']],
    ['the volume itself (mounting it makes it)', '/golem/input', base, []],
    ['on the way to a volume (mounting it makes the path)', '/golem', base, []],
    ['inside a volume, even when the image has it (the volume is empty)', '/golem/input/sub', [...base, entry('/golem'), entry('/golem/input'), entry('/golem/input/sub')], ['workdir-missing']],
    ['a directory the init makes at boot', '/tmp', base, []],
  ] as const)('%s', (_name, workdir, entries, expected) => {
    expect(codes({ WorkingDir: workdir }, [...entries])).toEqual(expected);
  });

  it('a WORKDIR inside a volume says which volume hides it', () => {
    const [f] = staticFindings(metadataOf({ Volumes: { '/golem/input': {} }, WorkingDir: '/golem/input/x' }), base, 1e6);
    expect(f?.message).toMatch(/inside VOLUME \/golem\/input, which a provider mounts as an empty directory/);
  });

  it('resolveImageDir names the first missing or non-directory component', () => {
    expect(resolveImageDir(base, '/srv/app')).toEqual({ kind: 'missing', at: '/srv' });
    expect(resolveImageDir(base, '/bin/sh/x')).toEqual({ kind: 'not-dir', at: '/bin/sh' });
    expect(resolveImageDir([...base, entry('/x', 'symlink', 'bin')], '/x/../etc')).toEqual({ kind: 'dir', resolved: '/etc' });
  });
});

describe('inspect and build warn about a missing WORKDIR', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gvmi-workdir-'));
    const root = await minimalRootfs(join(dir, 'root'), ['etc', 'srv/app']);
    await symlink('/srv/app', join(root, 'app'));
    await mkdir(join(root, 'golem/work'), { recursive: true });
    await writeFile(join(root, 'srv/app/run.sh'), '#!/bin/sh\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });


  it('build returns the finding and a warning line; inspect reports it', async () => {
    const output = join(dir, 'missing.gvmi');
    const result = await buildImage({ source: join(dir, 'root'), output, volumes: ['/golem/input'], workdir: '/golem/wrok' });
    expect(result.findings.map((f) => f.code)).toEqual(['workdir-missing']);
    expect(result.warnings.some((w) => w.startsWith('[workdir-missing] WORKDIR /golem/wrok does not exist'))).toBe(true);
    const inspection = await inspectImage(output);
    expect(inspection.findings.filter((f) => f.code === 'workdir-missing')).toHaveLength(1);
  });

  it('a WORKDIR that exists (directly or through a link) gives nothing', async () => {
    for (const workdir of ['/golem/work', '/app']) {
      const output = join(dir, `ok-${workdir.replace(/\//g, '_')}.gvmi`);
      const result = await buildImage({ source: join(dir, 'root'), output, volumes: ['/golem/input'], workdir });
      expect(result.findings, workdir).toEqual([]);
      expect((await inspectImage(output)).findings.map((f) => f.code)).not.toContain('workdir-missing');
    }
  });

  it('the CLI: build prints the warning, inspect prints the error with its fix', async () => {
    const output = join(dir, 'cli.gvmi');
    const b = capture();
    expect(await runCli(['build', join(dir, 'root'), '-o', output, '--volume', '/golem/input', '--workdir', '/nope'], b.io)).toBe(0);
    expect(b.err()).toMatch(/warning: \[workdir-missing\] WORKDIR \/nope does not exist/);
    const i = capture();
    expect(await runCli(['inspect', output], i.io)).toBe(0);
    expect(i.out()).toMatch(/error \[workdir-missing\] WORKDIR \/nope does not exist \(the image has no such directory\)/);
    expect(i.out()).toMatch(/fix: create it in the image \(RUN mkdir -p \/nope/);
  });
});
