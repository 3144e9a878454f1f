import { describe, expect, it } from 'vitest';
import { gvmiMatchers } from '../../../src/vitest/matchers.js';
import type { ExecResult } from '../../../src/vm/guest-process.js';
import '../../../src/vitest/index.js';

const result = (over: Partial<ExecResult> = {}): ExecResult => ({
  command: ['/bin/sh', '-c', 'echo hi; exit 3'],
  exitCode: 0, signal: null, stdout: 'hi\n', stderr: '', stdoutBytes: 3, stderrBytes: 0,
  truncated: false, durationMs: 12, timedOut: false, execFailure: null, ...over,
});

describe('result matchers: pass and fail messages', () => {
  it('toSucceed', () => {
    expect(gvmiMatchers.toSucceed(result()).pass).toBe(true);
    const fail = gvmiMatchers.toSucceed(result({ exitCode: 3, stderr: 'boom\n' }));
    expect(fail.pass).toBe(false);
    const message = fail.message();
    expect(message).toContain('expected the command to succeed, but it ended with exit 3');
    expect(message).toContain('command: /bin/sh -c "echo hi; exit 3"');
    expect(message).toContain('status:  exit 3 after 12 ms');
    expect(message).toContain('stdout:  hi');
    expect(message).toContain('stderr:  boom');
    expect(gvmiMatchers.toSucceed(result()).message()).toContain('expected the command to fail');
  });

  it('toExitWith names signals', () => {
    expect(gvmiMatchers.toExitWith(result({ exitCode: 3 }), 3).pass).toBe(true);
    const fail = gvmiMatchers.toExitWith(result({ exitCode: null, signal: 'SIGKILL' }), 0);
    expect(fail.pass).toBe(false);
    expect(fail.message()).toContain('it ended with killed by SIGKILL');
  });

  it('toHaveStdout / toHaveStderr: strings ignore trailing newlines, regexes match', () => {
    expect(gvmiMatchers.toHaveStdout(result(), 'hi').pass).toBe(true);
    expect(gvmiMatchers.toHaveStdout(result(), /^h/).pass).toBe(true);
    const fail = gvmiMatchers.toHaveStdout(result(), 'bye');
    expect(fail.pass).toBe(false);
    expect(fail.message()).toContain('expected stdout to be "bye"');
    expect(gvmiMatchers.toHaveStderr(result({ stderr: 'warn: x\n' }), /warn/).pass).toBe(true);
    expect(gvmiMatchers.toHaveStderr(result(), 'x').message()).toContain('stderr:  (empty)');
  });

  it('long streams are trimmed in messages', () => {
    const message = gvmiMatchers.toSucceed(result({ exitCode: 1, stdout: 'x'.repeat(10_000) })).message();
    expect(message.length).toBeLessThan(2500);
    expect(message).toContain('…');
  });

  it('toFailWithENOSPC without a VM still judges the result', async () => {
    const pass = await gvmiMatchers.toFailWithENOSPC(result({ exitCode: 1, stderr: 'dd: error writing \'/big\': No space left on device\n' }));
    expect(pass.pass).toBe(true);
    const fail = await gvmiMatchers.toFailWithENOSPC(result());
    expect(fail.pass).toBe(false);
    expect(fail.message()).toContain('expected the command to fail with ENOSPC');
  });

  it('a non-result is refused clearly', () => {
    expect(gvmiMatchers.toSucceed('nope').message()).toContain('expects the result of vm.exec()');
  });

  it('is registered on expect, with .not', () => {
    expect(result()).toSucceed();
    expect(result({ exitCode: 2 })).not.toSucceed();
    expect(result({ exitCode: 2 })).toExitWith(2);
    expect(result()).toHaveStdout('hi');
  });
});
