import { describe, expect, it } from 'vitest';
import { compareRuntimeRuns, describeOutcome, findingReason, type RuntimeRun } from '../../../src/diagnostics/runtime-comparison.js';
import { envDroppedFinding, overlayFullFinding } from '../../../src/diagnostics/run-findings.js';
import type { Finding } from '../../../src/diagnostics/finding.js';

const IMAGE_ENV = ['PATH=/usr/local/bin:/usr/bin:/bin'];

function run(runtimeVersion: '0.4' | '0.5', over: Partial<RuntimeRun> = {}): RuntimeRun {
  const exitCode = over.exitCode === undefined ? 0 : over.exitCode;
  return { runtimeVersion, exitCode, signal: null, status: exitCode ?? 137, stdout: '', stderr: '', findings: [], ...over };
}

const envDropped = (exitCode: number): Finding => envDroppedFinding('0.5', IMAGE_ENV, { exitCode, stdout: '', stderr: 'sh: python3: not found' })!;
const shadowed: Finding = { code: 'shadowed-files', severity: 'warning', message: '1 file(s) hidden', fix: 'move them' };

describe('compareRuntimeRuns', () => {
  it('works on 0.4, fails on 0.5: the verdict names the status and the finding only 0.5 got, and the run fails with its status', () => {
    const c = compareRuntimeRuns([
      run('0.4', { stdout: 'ok\n', findings: [shadowed] }),
      run('0.5', { exitCode: 127, stderr: 'sh: python3: not found\n', findings: [shadowed, envDropped(127)] }),
    ]);
    expect(c.verdict).toBe('works on 0.4, fails on 0.5 (exit 127): PATH is empty under 0.5 because the runtime sends no environment');
    expect(c).toMatchObject({
      runtimes: ['0.4', '0.5'], statuses: { '0.4': 0, '0.5': 127 },
      sameStatus: false, sameStdout: false, sameStderr: false,
      passed: ['0.4'], failed: ['0.5'],
      findings: { '0.4': ['shadowed-files'], '0.5': ['shadowed-files', 'image-env-dropped'] },
      status: 127,
    });
  });

  it('works everywhere with the same output', () => {
    const c = compareRuntimeRuns([run('0.4', { stdout: 'x\n' }), run('0.5', { stdout: 'x\n' })], { imageEnv: IMAGE_ENV });
    expect(c.verdict).toBe('works on 0.4 and 0.5 with the same output');
    expect(c).toMatchObject({ sameStatus: true, sameStdout: true, sameStderr: true, failed: [], status: 0 });
  });

  it('works everywhere but the output differs: the empty environment of 0.5 is named when the image has an Env', () => {
    const runs = [run('0.4', { stdout: 'hello\n' }), run('0.5', { stdout: '\n' })];
    expect(compareRuntimeRuns(runs, { imageEnv: ['PATH=/bin', 'GREETING=hello'] }).verdict)
      .toBe('works on 0.4 and 0.5, but stdout differs: under 0.5 the process gets no environment (the image sets PATH, GREETING)');
    expect(compareRuntimeRuns(runs).verdict).toBe('works on 0.4 and 0.5, but stdout differs');
    expect(compareRuntimeRuns([run('0.4', { stdout: 'a', stderr: 'b' }), run('0.5')]).verdict).toBe('works on 0.4 and 0.5, but stdout and stderr differ');
  });

  it('fails everywhere: each status, "the same way" when nothing differs, the first failure\'s status', () => {
    const same = compareRuntimeRuns([run('0.4', { exitCode: 1, stderr: 'boom\n' }), run('0.5', { exitCode: 1, stderr: 'boom\n' })]);
    expect(same.verdict).toBe('fails on 0.4 (exit 1) and 0.5 (exit 1), the same way');
    expect(same.status).toBe(1);
    const differently = compareRuntimeRuns([run('0.4', { exitCode: 2 }), run('0.5', { exitCode: null, signal: 'SIGKILL', status: 137 })]);
    expect(differently.verdict).toBe('fails on 0.4 (exit 2) and 0.5 (killed by SIGKILL)');
    expect(differently.status).toBe(2);
  });

  it('fails on 0.4 only: the overlay finding (0.4 has the 128 MiB tmpfs) is the reason', () => {
    const overlay = overlayFullFinding({ totalBytes: 128 * 1048576, usedBytes: 128 * 1048576 }, [], ['/golem/output']);
    const c = compareRuntimeRuns([run('0.4', { exitCode: 1, findings: [overlay] }), run('0.5')]);
    expect(c.verdict).toBe('works on 0.5, fails on 0.4 (exit 1): the 128 MiB overlay filled up under 0.4 (files written outside volumes)');
    expect(c.status).toBe(1);
  });

  it('a run stopped by an error with no finding: the error code and its message', () => {
    const c = compareRuntimeRuns([
      run('0.4'),
      run('0.5', { exitCode: null, status: 124, error: { code: 'exec.timeout', message: 'sleep 30: still running after 2 s, killed' } }),
    ]);
    expect(c.verdict).toBe('works on 0.4, fails on 0.5 (exec.timeout): sleep 30: still running after 2 s, killed');
    expect(c.status).toBe(124);
  });

  it('no reason when the failing run has no finding of its own and no error', () => {
    expect(compareRuntimeRuns([run('0.4', { findings: [shadowed] }), run('0.5', { exitCode: 3, findings: [shadowed] })]).verdict)
      .toBe('works on 0.4, fails on 0.5 (exit 3)');
  });
});

describe('findingReason and describeOutcome', () => {
  it('image-env-dropped: PATH first, the rest named, many shortened', () => {
    const f = (env: string[]) => envDroppedFinding('0.5', env, { exitCode: 1, stdout: '', stderr: '' })!;
    expect(findingReason(f(['GREETING=hi', 'PATH=/bin']), '0.5')).toBe('PATH and GREETING are empty under 0.5 because the runtime sends no environment');
    expect(findingReason(f(['HOME=/root']), '0.5')).toBe('HOME is empty under 0.5 because the runtime sends no environment');
    expect(findingReason(f(['A=1', 'B=2', 'C=3', 'D=4', 'E=5']), '0.5')).toBe('A, B, C and 2 more are empty under 0.5 because the runtime sends no environment');
  });

  it('other findings give their message', () => {
    expect(findingReason(shadowed, '0.4')).toBe('1 file(s) hidden');
  });

  it('outcomes', () => {
    expect(describeOutcome(run('0.4', { exitCode: 3 }))).toBe('exit 3');
    expect(describeOutcome(run('0.4', { exitCode: null, signal: 'SIGTERM', status: 143 }))).toBe('killed by SIGTERM');
    expect(describeOutcome(run('0.4', { exitCode: null, status: 127, error: { code: 'exec.failed', message: 'x' } }))).toBe('exec.failed');
  });
});
