import { describe, expect, it } from 'vitest';
import { diagnoseResult, envDroppedFinding } from '../../../src/diagnostics/run-findings.js';
import { formatFinding } from '../../../src/diagnostics/finding.js';

const ENV = ['PATH=/usr/local/bin:/usr/bin:/bin', 'APP_HOME=/app'];
const ok = { exitCode: 0, stdout: 'done\n', stderr: '' };

describe('image-env-dropped', () => {
  it('a failure under 0.5 of an image with an Env: names each variable lost, with its value, and the fix', () => {
    const f = envDroppedFinding('0.5', ENV, { exitCode: 127, stdout: '', stderr: 'sh: python3: not found\n' });
    expect(f).toMatchObject({ code: 'image-env-dropped', severity: 'warning', paths: ENV });
    expect(f!.message).toBe('the command failed (exit 127) under runtime 0.5, which starts every process with an EMPTY environment when the image has an Env (ya-runtime-vm PR #201): it did not get PATH, APP_HOME');
    expect(f!.fix).toContain("/bin/sh -c 'export PATH=/usr/local/bin:/usr/bin:/bin; …'");
    expect(f!.fix).toContain('absolute path');
    expect(f!.details).toEqual({ runtimeVersion: '0.5', variables: ['PATH', 'APP_HOME'], exitCode: 127 });
    expect(formatFinding(f!)).toBe([
      `warning [image-env-dropped] ${f!.message}`,
      '    PATH=/usr/local/bin:/usr/bin:/bin',
      '    APP_HOME=/app',
      `  fix: ${f!.fix}`,
    ].join('\n'));
  });

  it('a success that printed "not found" counts; a plain success does not', () => {
    expect(envDroppedFinding('0.5', ENV, { exitCode: 0, stdout: '', stderr: 'sh: gzip: not found\n' })?.message).toMatch(/^the command printed "not found" under runtime 0\.5/);
    expect(envDroppedFinding('0.5', ENV, { exitCode: 0, stdout: 'config not found, using defaults\n', stderr: '' })).toBeDefined();
    expect(envDroppedFinding('0.5', ENV, ok)).toBeUndefined();
  });

  it('not for a program that never started (exit 9 from execve): exec-failed explains that one', () => {
    const execFailure = { step: 'execve', errno: 2, errnoName: 'ENOENT', cwd: '/' };
    expect(envDroppedFinding('0.5', ENV, { exitCode: 9, stdout: '', stderr: '', execFailure })).toBeUndefined();
    expect(envDroppedFinding('0.5', ENV, { exitCode: 9, stdout: '', stderr: '', execFailure: null })).toBeDefined();
  });

  it('a signal counts as a failure', () => {
    expect(envDroppedFinding('0.5', ENV, { exitCode: null, stdout: '', stderr: '' })?.message).toMatch(/^the command failed \(killed by a signal\)/);
  });

  it('nothing under 0.4 (the Env is applied) or for an image without Env', () => {
    expect(envDroppedFinding('0.4', ENV, { exitCode: 127, stdout: '', stderr: 'not found' })).toBeUndefined();
    expect(envDroppedFinding('0.5', [], { exitCode: 127, stdout: '', stderr: 'not found' })).toBeUndefined();
  });

  it('without PATH in the Env, the fix shows the general form', () => {
    expect(envDroppedFinding('0.5', ['APP_HOME=/app'], { exitCode: 1, stdout: '', stderr: '' })!.fix).toContain("export NAME=value");
  });

  it('diagnoseResult adds it from the VM\'s runtime and image Env', async () => {
    const vm = (runtimeVersion: '0.4' | '0.5') => ({
      volumes: [{ guestPath: '/golem/output' }],
      info: { runtimeVersion, metadata: { env: ENV } },
      stats: () => Promise.reject(new Error('not running')),
      overlayUsage: () => Promise.resolve([]),
    });
    const failed = { exitCode: 2, stdout: '', stderr: '', stdoutBytes: 0, stderrBytes: 0 };
    expect((await diagnoseResult(vm('0.5'), failed, false)).map((f) => f.code)).toEqual(['image-env-dropped']);
    expect(await diagnoseResult(vm('0.4'), failed, false)).toEqual([]);
  });
});
