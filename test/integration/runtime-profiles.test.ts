/**
 * Runtime profiles from the outside: `run --runtime-version all` (the built CLI, as a user runs
 * it), the profile in --json, in serve's `info` and in a vitest suite run under every runtime.
 * The tiny image's Env is PATH=/bin and GREETING=hello from the image: 0.4 applies it, 0.5 starts
 * every process with an empty environment (ya-runtime-vm PR #201).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { forEachRuntime, vmTest } from '../../src/vitest/index.js';
import { startVm } from '../../src/vm/start-vm.js';
import { serveVm } from '../../src/server/ws-server.js';
import { connectVm } from '../../src/server/ws-client.js';

const cli = resolve('dist/cli/main.js');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-runtimes-'));
});

function gvmi(args: string[], env: Record<string, string> = {}) {
  return execa('node', [cli, ...args], { reject: false, cwd: dir, env: { GVMI_TEST_RUNTIME_VERSION: '', ...env } });
}

describe('run --runtime-version all', () => {
  it('runs the command under each runtime, each line marked, volumes to DIR/<runtime>, then the comparison', async () => {
    const out = join(dir, 'out');
    const r = await gvmi(['run', inject('tinyImage'), '--runtime-version', 'all', '--output', out, '--',
      '/bin/sh', '-c', 'echo "[$GREETING]"; echo "$GREETING" > /golem/output/greeting']);
    expect(r.stdout).toBe('[0.4] [hello from the image]\n[0.5] []');
    expect(r.stderr).toMatch(/^gvmi-test: ── runtime 0\.4 \(ya-runtime-vm 0\.4\.x: .*\) ──$/m);
    expect(r.stderr).toMatch(/^gvmi-test: ── runtime 0\.5 \(ya-runtime-vm 0\.5\.x: .*\) ──$/m);
    expect(r.stderr).toContain([
      'gvmi-test: ── comparison ──',
      'gvmi-test:   0.4: exit 0; findings: shadowed-files',
      'gvmi-test:   0.5: exit 0; findings: shadowed-files',
      'gvmi-test:   exit status: same',
      'gvmi-test:   stdout: differs',
      'gvmi-test:   stderr: same',
      'gvmi-test: verdict: works on 0.4 and 0.5, but stdout differs: under 0.5 the process gets no environment (the image sets PATH, GREETING)',
    ].join('\n'));
    expect(r.exitCode).toBe(0);
    expect(await readFile(join(out, '0.4/golem/output/greeting'), 'utf8')).toBe('hello from the image\n');
    expect(await readFile(join(out, '0.5/golem/output/greeting'), 'utf8')).toBe('\n');
  });

  it('--json: one object per runtime and the comparison; fails with the failing runtime\'s status and the image-env-dropped finding', async () => {
    const r = await gvmi(['run', inject('tinyImage'), '--runtime-version', 'both', '--json', '--', '/bin/sh', '-c', 'test -n "$GREETING"']);
    const result = JSON.parse(r.stdout) as {
      runtimeVersion: string;
      runs: { runtimeVersion: string; exitCode: number; findings: { code: string; paths?: string[] }[] }[];
      comparison: { sameStatus: boolean; statuses: Record<string, number>; failed: string[]; findings: Record<string, string[]>; verdict: string; status: number };
    };
    expect(result.runtimeVersion).toBe('all');
    expect(result.runs.map((x) => [x.runtimeVersion, x.exitCode])).toEqual([['0.4', 0], ['0.5', 1]]);
    const envFinding = result.runs[1]!.findings.find((f) => f.code === 'image-env-dropped');
    expect(envFinding?.paths).toEqual(['PATH=/bin', 'GREETING=hello from the image']);
    expect(result.comparison).toMatchObject({
      sameStatus: false, statuses: { '0.4': 0, '0.5': 1 }, failed: ['0.5'], status: 1,
      findings: { '0.4': ['shadowed-files'], '0.5': ['shadowed-files', 'image-env-dropped'] },
      verdict: 'works on 0.4, fails on 0.5 (exit 1): PATH and GREETING are empty under 0.5 because the runtime sends no environment',
    });
    expect(r.exitCode).toBe(1);
  });
});

describe('one runtime', () => {
  it('GVMI_TEST_RUNTIME_VERSION picks it, --json says which, and a failure under 0.5 prints image-env-dropped', async () => {
    const r = await gvmi(['run', inject('tinyImage'), '--json', '--', '/bin/sh', '-c', 'echo "$GREETING"; exit 4'], { GVMI_TEST_RUNTIME_VERSION: '0.5' });
    const result = JSON.parse(r.stdout) as { runtimeVersion: string; exitCode: number; stdout: string; findings: { code: string }[] };
    expect(result).toMatchObject({ runtimeVersion: '0.5', exitCode: 4 });
    expect(result.findings.map((f) => f.code)).toContain('image-env-dropped');
    expect(result.stdout).toBe('\n');
    const text = await gvmi(['run', inject('tinyImage'), '--runtime-version', '0.5', '--', '/bin/sh', '-c', 'exit 4']);
    expect(text.stderr).toMatch(/^gvmi-test: warning \[image-env-dropped\] the command failed \(exit 4\) under runtime 0\.5, .* it did not get PATH, GREETING$/m);
    expect(text.stderr).toContain('\n    PATH=/bin\n    GREETING=hello from the image\n  fix: ');
    expect(text.exitCode).toBe(4);
  });

  it('all is refused by shell and serve, and an unknown profile by every command, before anything boots', async () => {
    for (const command of ['shell', 'serve']) {
      const r = await gvmi([command, inject('tinyImage'), '--runtime-version', 'all'], {});
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`gvmi-test: ${command}: --runtime-version all runs a command once per runtime, which only \`run\` does [usage]`);
    }
    const bad = await gvmi(['run', inject('tinyImage'), '--', 'true'], { GVMI_TEST_RUNTIME_VERSION: '0.6' });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('GVMI_TEST_RUNTIME_VERSION "0.6": not a runtime profile (0.4, 0.5) [usage]');
  });

  it("vm.info and a served VM's info carry the profile", async () => {
    await using vm = await startVm({ image: inject('tinyImage'), runtimeVersion: '0.5' });
    expect(vm.info.runtimeVersion).toBe('0.5');
    const server = await serveVm(vm);
    try {
      const remote = await connectVm(server.url);
      expect(remote.info.runtimeVersion).toBe('0.5');
      await remote.stop();
    } finally {
      await server.close();
    }
  });
});

forEachRuntime((runtimeVersion) => {
  const test = vmTest({ image: inject('tinyImage'), runtimeVersion, scope: 'file' });
  test('a suite under every runtime: the VM is of its block\'s runtime and sees what that runtime gives', async ({ vm }) => {
    expect(vm.info.runtimeVersion).toBe(runtimeVersion);
    const r = await vm.exec('echo "$GREETING"');
    expect(r).toHaveStdout(runtimeVersion === '0.4' ? 'hello from the image' : '');
  });
});
