import { describe, expect, it } from 'vitest';
import { GuestProcess, signalName, signalNumber } from '../../../src/vm/guest-process.js';
import { ExitKind } from '../../../src/agent/protocol.js';

const control = { signal: async () => {}, putInput: async () => {} };

describe('GuestProcess', () => {
  it('output and exit that arrive before listeners are attached are delivered to them, in order', async () => {
    const p = new GuestProcess(1n, ['echo'], control, 1024, false);
    // what a single socket read can deliver before spawn() returns to its caller
    p.pushOutput(1, Buffer.from('one '));
    p.pushOutput(2, Buffer.from('err'));
    p.pushOutput(1, Buffer.from('two'));
    p.finish(3, ExitKind.EXITED);
    const events: string[] = [];
    p.on('stdout', (d) => events.push(`out:${d.toString()}`));
    p.on('stderr', (d) => events.push(`err:${d.toString()}`));
    p.on('exit', (r) => events.push(`exit:${r.exitCode}`));
    const r = await p.wait();
    expect(events).toEqual(['out:one ', 'err:err', 'out:two', 'exit:3']);
    expect(r).toMatchObject({ stdout: 'one two', stderr: 'err', exitCode: 3, signal: null });
  });

  it('keeps at most maxBuffer bytes but counts them all', async () => {
    const p = new GuestProcess(1n, ['x'], control, 4, false);
    p.pushOutput(1, Buffer.from('abc'));
    p.pushOutput(1, Buffer.from('defgh'));
    p.finish(9, ExitKind.KILLED);
    const r = await p.wait();
    expect(r).toMatchObject({ stdout: 'abc', stdoutBytes: 8, truncated: true, exitCode: null, signal: 'SIGKILL' });
  });

  it('names signals both ways', () => {
    expect(signalName(15)).toBe('SIGTERM');
    expect(signalNumber('INT')).toBe(2);
    expect(signalNumber('SIGKILL')).toBe(9);
  });
});
