/**
 * A hostile image chooses its labels, Env, VOLUME and WORKDIR paths and file names; a guest writes
 * its console. None of it may reach the terminal raw through what gvmi-test prints.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { reportError } from '../../../src/cli/report-error.js';
import { buildImage } from '../../../src/image/build-image.js';
import { GvmiTestError } from '../../../src/errors.js';
import { capture } from '../../helpers/capture-io.js';

/** C0 but \n (lines are the output's own), DEL, C1, bidi embeddings/overrides/isolates. */
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;


const VOLUME = '/golem/in\x1b[31mput\u009b0m';
const FAKE_ALL_CLEAR = '\x1b[1A\x1b[2K\rno provider traps found';
const LABELS = {
  'org.title\x1b]0;owned\x07': 'v\x1b[8m\u009b31m\u202etxt.exe\u2066',
  bell: '\x07\x7f\x00',
};
const ENV = ['PATH=/bin', `EVIL=${FAKE_ALL_CLEAR}`, 'C1=\u009b2J\u0085'];
const WORKDIR = '/work\x1b[5m\u202e';
const BAKED = ['\x1b]0;pwned\x07\x1b[2J\x1b[Hclear', `x\n${FAKE_ALL_CLEAR}`];

let dir: string;
let image: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-hostile-'));
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await mkdir(join(rootfs, VOLUME), { recursive: true });
  for (const name of BAKED) await writeFile(join(rootfs, VOLUME, name), 'x');
  image = join(dir, 'hostile.gvmi');
  await buildImage({
    source: rootfs,
    output: image,
    volumes: [VOLUME],
    env: ENV,
    workdir: WORKDIR,
    labels: LABELS,
    entrypoint: ['/bin/\x1b[2Jsh'],
    user: '\x1b[8m1000',
  });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('what gvmi-test prints about a hostile image', () => {
  it('inspect: no control character reaches the terminal, every field is shown escaped on its own line', async () => {
    const c = capture();
    expect(await runCli(['inspect', image], c.io)).toBe(0);
    expect(c.out()).not.toMatch(RAW_CONTROL);
    expect(c.err()).not.toMatch(RAW_CONTROL);
    const lines = c.out().split('\n');
    expect(lines).toContain('  volumes     /golem/in\\x1b[31mput\\u009b0m');
    expect(lines).toContain('  workdir     /work\\x1b[5m\\u202e');
    expect(lines).toContain('  env         PATH=/bin EVIL=\\x1b[1A\\x1b[2K\\rno provider traps found C1=\\u009b2J\\u0085');
    expect(lines).toContain('  label       org.title\\x1b]0;owned\\x07=v\\x1b[8m\\u009b31m\\u202etxt.exe\\u2066');
    expect(lines).toContain('  label       bell=\\x07\\u007f\\x00');
    expect(lines).toContain('  user        \\x1b[8m1000');
    // the baked files are listed as shadowed, each on one line, the fake "all clear" inert
    expect(lines).toContain('    /golem/in\\x1b[31mput\\u009b0m/\\x1b]0;pwned\\x07\\x1b[2J\\x1b[Hclear');
    expect(lines).toContain('    /golem/in\\x1b[31mput\\u009b0m/x\\n\\x1b[1A\\x1b[2K\\rno provider traps found');
    expect(lines).not.toContain('no provider traps found');
    expect(c.out()).toContain('warning [shadowed-files] 2 file(s)');
  });

  it('inspect --json: valid JSON with the exact values, C1 and bidi characters escaped too', async () => {
    const c = capture();
    expect(await runCli(['inspect', '--json', image], c.io)).toBe(0);
    expect(c.out()).not.toMatch(RAW_CONTROL);
    const parsed = JSON.parse(c.out()) as { metadata: { labels: Record<string, string>; env: string[]; volumes: string[]; workingDir: string }; shadowed: string[] };
    expect(parsed.metadata.labels).toEqual(LABELS);
    expect(parsed.metadata.env).toEqual(ENV);
    expect(parsed.metadata.volumes).toEqual([VOLUME]);
    expect(parsed.metadata.workingDir).toBe(WORKDIR);
    expect(parsed.shadowed.sort()).toEqual(BAKED.map((n) => `${VOLUME}/${n}`).sort());
  });

  it('an error: message, hint and guest console tail escaped, one line each', () => {
    const error = new GvmiTestError('vm.boot-failed', `the guest crashed: Kernel panic \x1b]0;owned\x07\nfake line`, {
      hint: 'see \u009b2J below',
      details: { consoleTail: 'booting\r\n\x1b[2J\x1b[Hscreen cleared\r\nGVMI-INIT-FATAL resolv.conf 2\u202e\r\n' },
    });
    const c = capture();
    expect(reportError(error, c.io)).toBe(70);
    expect(c.err()).not.toMatch(RAW_CONTROL);
    expect(c.err().split('\n')).toEqual([
      'gvmi-test: the guest crashed: Kernel panic \\x1b]0;owned\\x07\\nfake line [vm.boot-failed]',
      '  hint: see \\u009b2J below',
      '  guest console (last lines):',
      '    booting',
      '    \\x1b[2J\\x1b[Hscreen cleared',
      '    GVMI-INIT-FATAL resolv.conf 2\\u202e',
      '',
    ]);
    const j = capture();
    reportError(error, j.io, true);
    expect(j.out()).not.toMatch(RAW_CONTROL);
    expect((JSON.parse(j.out()) as { error: { hint: string } }).error.hint).toBe('see \u009b2J below');
  });
});
