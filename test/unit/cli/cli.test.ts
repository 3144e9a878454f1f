import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { exitCodeFor } from '../../../src/cli/exit-codes.js';
import { capture } from '../../helpers/capture-io.js';


let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-cli-unit-'));
});

describe('CLI, in process', () => {
  it('inspect lists shadowed files and provider traps, with their fixes', async () => {
    const c = capture();
    expect(await runCli(['inspect', inject('tinyImage')], c.io)).toBe(0);
    expect(c.out()).toContain('volumes     /golem/input /golem/output');
    expect(c.out()).toContain('warning [shadowed-files]');
    expect(c.out()).toContain('/golem/input/baked.txt');
    expect(c.out()).toContain('warning [entrypoint-ignored]');
    expect(c.out()).toContain('fix: ');
  });

  it('inspect --json is machine-readable', async () => {
    const c = capture();
    expect(await runCli(['inspect', '--json', inject('tinyImage')], c.io)).toBe(0);
    const parsed = JSON.parse(c.out()) as { shadowed: string[]; findings: { code: string }[]; squashfs: { compression: string } };
    expect(parsed.shadowed).toEqual(['/golem/input/baked.txt']);
    expect(parsed.findings.map((f) => f.code)).toEqual(['shadowed-files', 'entrypoint-ignored']);
    expect(parsed.squashfs.compression).toBe('lzo');
  });

  it('inspect of a bad file: one line, the code, exit 65', async () => {
    await writeFile(join(dir, 'bad.gvmi'), 'not an image at all, no digits');
    const c = capture();
    expect(await runCli(['inspect', join(dir, 'bad.gvmi')], c.io)).toBe(65);
    expect(c.err()).toMatch(/^gvmi-test: .*\[image\.(bad-length|truncated)\]\n/);
  });

  it('build refuses an existing output (73) and warns about a missing VOLUME', async () => {
    const output = join(dir, 'x.gvmi');
    await writeFile(output, 'keep me');
    const c = capture();
    expect(await runCli(['build', inject('tinyRootfs'), '-o', output], c.io)).toBe(73);
    expect(c.err()).toContain('[build.output-exists]');
    const d = capture();
    expect(await runCli(['build', inject('tinyRootfs'), '-o', output, '--force'], d.io)).toBe(0);
    expect(d.err()).toContain('at least one volume directory must be specified');
  });

  it('usage errors exit 2', async () => {
    const c = capture();
    expect(await runCli(['build', inject('tinyRootfs'), '-o', join(dir, 'y.gvmi'), '--compression', 'brotli'], c.io)).toBe(2);
    expect(await runCli(['no-such-command'], capture().io)).toBe(2);
  });

  it('maps every error family to its exit status', () => {
    expect(exitCodeFor('exec.timeout')).toBe(124);
    expect(exitCodeFor('setup.qemu-missing')).toBe(69);
    expect(exitCodeFor('vm.crashed')).toBe(70);
    expect(exitCodeFor('transfer.not-in-volume')).toBe(74);
    expect(exitCodeFor('image.crc-mismatch')).toBe(65);
  });
});
