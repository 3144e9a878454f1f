import { describe, expect, it } from 'vitest';
import { gvmiMatchers } from '../../../src/vitest/matchers.js';
import { RESULT_VM } from '../../../src/vm/started-vm.js';
import type { ExecResult } from '../../../src/vm/guest-process.js';

/** A result as vm.exec() returns it: its VM (here only its info) under RESULT_VM. */
function resultOf(runtimeVersion: '0.4' | '0.5', env: string[], over: Partial<ExecResult> = {}): ExecResult {
  const result = {
    command: ['/bin/sh', '-c', 'echo "$GREETING"'], exitCode: 0, signal: null, stdout: '\n', stderr: '', stdoutBytes: 1, stderrBytes: 0,
    truncated: false, durationMs: 5, timedOut: false, execFailure: null, ...over,
  } as ExecResult;
  Object.defineProperty(result, RESULT_VM, { value: { info: { runtimeVersion, metadata: { env } } }, enumerable: false });
  return result;
}

const NOTE = 'runtime: 0.5, which runs every command with an EMPTY environment: the image Env (PATH, GREETING) was not set';

describe('failing matchers on a 0.5 VM say that the image Env was not set', () => {
  const env = ['PATH=/bin', 'GREETING=hello'];
  it('toHaveStdout, toSucceed, toExitWith, toHaveStderr', () => {
    expect(gvmiMatchers.toHaveStdout(resultOf('0.5', env), 'hello').message()).toContain(NOTE);
    expect(gvmiMatchers.toSucceed(resultOf('0.5', env, { exitCode: 127 })).message()).toContain(NOTE);
    expect(gvmiMatchers.toExitWith(resultOf('0.5', env), 3).message()).toContain(NOTE);
    expect(gvmiMatchers.toHaveStderr(resultOf('0.5', env), 'x').message()).toContain(NOTE);
  });

  it('not when the matcher passed, under 0.4, or for an image without Env', () => {
    expect(gvmiMatchers.toHaveStdout(resultOf('0.5', env), '').message()).not.toContain('EMPTY environment');
    expect(gvmiMatchers.toHaveStdout(resultOf('0.4', env), 'hello').message()).not.toContain('EMPTY environment');
    expect(gvmiMatchers.toHaveStdout(resultOf('0.5', []), 'hello').message()).not.toContain('EMPTY environment');
  });
});
