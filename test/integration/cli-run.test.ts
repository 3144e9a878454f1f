/**
 * `gvmi-test run` as a user runs it: the built CLI in a child process, real exit statuses.
 */
import { chmod, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, inject, it } from 'vitest';

const cli = resolve('dist/cli/main.js');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-cli-'));
});

function run(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  return execa('node', [cli, ...args], { reject: false, cwd: options.cwd ?? dir, ...(options.env ? { env: options.env } : {}) });
}

describe('gvmi-test run', () => {
  it('prints both streams and exits with the guest status', async () => {
    const r = await run(['run', inject('tinyImage'), '--quiet', '--', '/bin/sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r.stdout).toBe('out');
    expect(r.stderr).toBe('err');
    expect(r.exitCode).toBe(3);
    // without --quiet, gvmi-test's own warnings (prefixed) come on stderr too
    const loud = await run(['run', inject('tinyImage'), '--', '/bin/sh', '-c', 'echo err >&2']);
    expect(loud.stderr).toMatch(/^gvmi-test: warning \[shadowed-files\]/m);
    expect(loud.stderr).toMatch(/^err$/m);
  });

  it('uploads a host script into the first volume and runs it with its arguments', async () => {
    await writeFile(join(dir, 'script.sh'), '#!/bin/sh\necho "running $0 with $# args: $*"\n');
    await chmod(join(dir, 'script.sh'), 0o644);
    const r = await run(['run', inject('tinyImage'), '--', './script.sh', 'one', 'two words']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('running /golem/input/script.sh with 2 args: one two words');
    expect(r.stderr).not.toContain('error');
  });

  it('--input and --output round-trip files through volumes', async () => {
    await writeFile(join(dir, 'numbers.txt'), '3\n1\n2\n');
    const out = join(dir, 'out');
    const r = await run(['run', inject('tinyImage'), '--input', 'numbers.txt', '--output', out, '--',
      '/bin/sh', '-c', 'sort /golem/input/numbers.txt > /golem/output/sorted.txt']);
    expect(r.exitCode).toBe(0);
    expect(await readFile(join(out, 'golem/output/sorted.txt'), 'utf8')).toBe('1\n2\n3\n');
  });

  it('a killed command exits 128+signal', async () => {
    const r = await run(['run', inject('tinyImage'), '--', '/bin/sh', '-c', 'kill -9 $$']);
    expect(r.exitCode).toBe(137);
  });

  it('--json prints one result object', async () => {
    const r = await run(['run', inject('tinyImage'), '--json', '--', '/bin/echo', 'hi']);
    const result = JSON.parse(r.stdout) as { exitCode: number; stdout: string; accelerator: { accel: string; reason: string } };
    expect(result).toMatchObject({ exitCode: 0, stdout: 'hi\n' });
    expect(result.accelerator.reason).toMatch(/^(TCG|KVM) \(/);
  });

  it('a program a provider cannot start: exit 9 as a requestor sees it, and gvmi-test says what failed', async () => {
    // No PATH search on a provider: a bare name is not found, whatever the image's PATH says.
    const bare = await run(['run', inject('tinyImage'), '--', 'ls', '/']);
    expect(bare.exitCode).toBe(9);
    expect(bare.stderr).toContain('[exec-failed] ls is not a path');
    expect(bare.stderr).toContain('exit code 9');
    const missing = await run(['run', inject('tinyImage'), '--', '/no/such-tool']);
    expect(missing.exitCode).toBe(9);
    expect(missing.stderr).toContain('[exec-failed] /no/such-tool is not in the image');
    // One quoted word is a command line, run by /bin/sh -c as golem-js's run("…") does.
    const line = await run(['run', inject('tinyImage'), '--quiet', '--', 'ls /golem/output; echo $PWD']);
    expect(line.exitCode).toBe(0);
    expect(line.stdout).toBe('/golem/work');
  });

  it('--timeout kills the command and exits 124', async () => {
    const r = await run(['run', inject('tinyImage'), '--timeout', '2', '--', '/bin/sleep', '30']);
    expect(r.exitCode).toBe(124);
    expect(r.stderr).toContain('[exec.timeout]');
  });

  it('a corrupt image: one line with its code, exit 65, no stack trace', async () => {
    await writeFile(join(dir, 'corrupt.gvmi'), Buffer.alloc(8192, 1));
    const r = await run(['run', join(dir, 'corrupt.gvmi'), '--', '/bin/true']);
    expect(r.exitCode).toBe(65);
    expect(r.stderr).toMatch(/\[image\.bad-length\]/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('no temporary directories are left behind', async () => {
    const privateTmp = await mkdtemp(join(tmpdir(), 'gvmi-own-tmp-'));
    await chmod(privateTmp, 0o711); // QEMU may run unprivileged and must reach the volumes
    const r = await run(['run', inject('tinyImage'), '--', '/bin/sh', '-c', 'echo x > /golem/output/f'], { env: { TMPDIR: privateTmp } });
    expect(r.exitCode).toBe(0);
    expect(await readdir(privateTmp)).toEqual([]);
  });
});
