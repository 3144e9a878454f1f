/**
 * `gvmi-test run` as a user runs it: the built CLI in a child process, real exit statuses.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, inject, it } from 'vitest';

const cli = resolve('dist/cli/main.js');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-cli-'));
});

function run(args: string[], options: { cwd?: string; env?: Record<string, string>; input?: string | Buffer } = {}) {
  return execa('node', [cli, ...args], {
    reject: false, cwd: options.cwd ?? dir,
    ...(options.env ? { env: options.env } : {}),
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
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
    // gvmi-test says that a host file went in, and where
    expect(r.stderr).toContain('gvmi-test: uploaded ./script.sh → /golem/input/script.sh');
  });

  it('--script uploads a host file named by any path; an absolute command path is the image\'s', async () => {
    await writeFile(join(dir, 'job.sh'), 'echo "job got $# args: $*"\n'); // no #!: run by /bin/sh
    const r = await run(['run', inject('tinyImage'), '--script', join(dir, 'job.sh'), '--', 'a', 'b']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('job got 2 args: a b');
    expect(r.stderr).toContain(`gvmi-test: uploaded ${join(dir, 'job.sh')} → /golem/input/job.sh`);
    // /bin/sh exists on this host too: it is the image's (busybox) that runs, nothing is uploaded
    const image = await run(['run', inject('tinyImage'), '--', '/bin/sh', '-c', 'readlink /bin/sh; ls /golem/input']);
    expect(image.exitCode).toBe(0);
    expect(image.stdout).toBe('busybox');
    expect(image.stderr).not.toContain('uploaded');
    const missing = await run(['run', inject('tinyImage'), '--script', join(dir, 'no-such.sh')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('[usage]');
  });

  it('--volume at a path the image does not declare as a VOLUME: refused under 0.4 (image volumes only), a host volume of the deploy under 0.5 with a note, in --json too', async () => {
    const data = join(dir, 'data');
    await mkdir(data, { recursive: true });
    await chmod(dir, 0o711); // QEMU may run unprivileged and must reach the directory
    const refused = await run(['run', inject('tinyImage'), '--runtime-version', '0.4', '--volume', `/data=${data}`, '--', '/bin/true']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/a volume at \/data, which the image does not declare as a VOLUME, under runtime 0\.4: ya-runtime-vm 0\.4 has no deploy volumes.*\[deploy\.unsupported-by-runtime\]/);
    const r = await run(['run', inject('tinyImage'), '--runtime-version', '0.5', '--volume', `/data=${data}`, '--', '/bin/sh', '-c', 'echo x > /data/f']);
    expect(r.exitCode).toBe(0);
    expect(await readFile(join(data, 'f'), 'utf8')).toBe('x\n');
    expect(r.stderr).toMatch(/^gvmi-test: info \[volume-not-in-image\] 1 volume\(s\) mounted where the image declares no VOLUME/m);
    expect(r.stderr).toMatch(/^ {4}\/data$/m);
    expect(r.stderr).toContain("fix: ask for it at deploy (volumes: { '/data': host }), bind one of the image's volumes instead (--volume /golem/input=DIR");
    const j = await run(['run', inject('tinyImage'), '--runtime-version', '0.5', '--json', '--volume', `/data=${data}`, '--', '/bin/true']);
    expect((JSON.parse(j.stdout) as { findings: { code: string }[] }).findings.map((f) => f.code)).toContain('volume-not-in-image');
    // an image volume bound to the user's directory is what a provider does: no note
    const own = await run(['run', inject('tinyImage'), '--volume', `/golem/output=${data}`, '--', '/bin/true']);
    expect(own.stderr).not.toContain('volume-not-in-image');
  });

  it('a piped stdin is the command\'s stdin, every byte of it; --no-stdin gives it none', async () => {
    const hi = await run(['run', inject('tinyImage'), '--quiet', '--', '/bin/cat'], { input: 'hi\n' });
    expect(hi.exitCode).toBe(0);
    expect(hi.stdout).toBe('hi');
    const data = randomBytes(1536 * 1024);
    const big = await run(['run', inject('tinyImage'), '--quiet', '--', '/bin/sh', '-c', 'cat | md5sum'], { input: data });
    expect(big.exitCode).toBe(0);
    expect(big.stdout.split(' ')[0]).toBe(createHash('md5').update(data).digest('hex'));
    const none = await run(['run', inject('tinyImage'), '--quiet', '--no-stdin', '--', '/bin/sh', '-c', 'cat; echo end'], { input: 'hi\n' });
    expect(none.stdout).toBe('end');
  });

  it("options after the command's first word are the command's, without --", async () => {
    const r = await run(['run', inject('tinyImage'), '--quiet', '/bin/echo', '--timeout', '5', '--json']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('--timeout 5 --json');
    expect(r.stderr).toBe('');
  });

  it('--input HOST:DIR/ puts the file into that directory, under its own name', async () => {
    await writeFile(join(dir, 'into.txt'), 'into the directory\n');
    const r = await run(['run', inject('tinyImage'), '--quiet', '--input', 'into.txt:/golem/input/', '--input', 'into.txt:/golem/output/sub/', '--',
      '/bin/sh', '-c', 'cat /golem/input/into.txt /golem/output/sub/into.txt']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('into the directory\ninto the directory');
  });

  it('--report: binary units, no empty files, no path of a directory already removed; an input replacing a shadowed file is not reported', async () => {
    await writeFile(join(dir, 'baked.txt'), 'supplied by the run\n');
    const r = await run(['run', inject('tinyImage'), '--report', '--input', 'baked.txt', '--', '/bin/sh', '-c', 'touch /empty-file; cat /golem/input/baked.txt']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('supplied by the run');
    expect(r.stderr).toMatch(/^gvmi-test: overlay \(RAM, outside volumes\): .* of 128 MiB used/m);
    expect(r.stderr).not.toContain('/empty-file');
    expect(r.stderr).toMatch(/^gvmi-test: volume \/golem\/input: .* in 1 file\(s\) \(a temporary host directory, removed at exit; --keep keeps it\)$/m);
    expect(r.stderr).not.toContain('gvmi-vol-');
    // the run itself supplied /golem/input/baked.txt: the image's copy is not missed
    expect(r.stderr).not.toContain('shadowed-files');
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
    const r = await run(['run', inject('tinyImage'), '--timeout', '1', '--', '/bin/sleep', '30']);
    expect(r.exitCode).toBe(124);
    expect(r.stderr).toContain('[exec.timeout]');
  });

  it('--json after a timeout: the output so far and timedOut, exit 124', async () => {
    const r = await run(['run', inject('tinyImage'), '--json', '--timeout', '1', '--', '/bin/sh', '-c', 'echo before; echo err >&2; sleep 30']);
    expect(r.exitCode).toBe(124);
    const result = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({ timedOut: true, stdout: 'before\n', stderr: 'err\n', signal: 'SIGKILL', error: { code: 'exec.timeout' } });
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
