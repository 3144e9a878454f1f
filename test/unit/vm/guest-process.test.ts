import { describe, expect, it } from 'vitest';
import { GuestProcess, HOLD_LIMIT_BYTES, signalName, signalNumber } from '../../../src/vm/guest-process.js';

describe('GuestProcess', () => {
  it('output and exit that arrive before listeners are attached are delivered to them, in order', async () => {
    const { process: p, sink } = GuestProcess.create(['echo'], 1024, false);
    // what a single socket read can deliver before spawn() returns to its caller
    sink.output('stdout', Buffer.from('one '));
    sink.output('stderr', Buffer.from('err'));
    sink.output('stdout', Buffer.from('two'));
    sink.exited({ exitCode: 3, signal: null });
    const events: string[] = [];
    p.on('stdout', (d) => events.push(`out:${d.toString()}`));
    p.on('stderr', (d) => events.push(`err:${d.toString()}`));
    p.on('exit', (r) => events.push(`exit:${r.exitCode}`));
    const r = await p.wait();
    expect(events).toEqual(['out:one ', 'err:err', 'out:two', 'exit:3']);
    expect(r).toMatchObject({ stdout: 'one two', stderr: 'err', exitCode: 3, signal: null });
  });

  it('keeps at most maxBuffer bytes but counts them all', async () => {
    const { process: p, sink } = GuestProcess.create(['x'], 4, false);
    sink.output('stdout', Buffer.from('abc'));
    sink.output('stdout', Buffer.from('defgh'));
    sink.exited({ exitCode: null, signal: 'SIGKILL' });
    const r = await p.wait();
    expect(r).toMatchObject({ stdout: 'abc', stdoutBytes: 8, truncated: true, exitCode: null, signal: 'SIGKILL' });
  });

  it(`holds at most ${HOLD_LIMIT_BYTES} bytes of output for listeners not attached yet; the exit is always held`, async () => {
    const { process: p, sink } = GuestProcess.create(['x'], 0, false);
    const chunk = Buffer.alloc(HOLD_LIMIT_BYTES / 2);
    for (let i = 0; i < 3; i++) sink.output('stdout', chunk);
    sink.exited({ exitCode: 0, signal: null });
    let bytes = 0;
    let exited = false;
    p.on('stdout', (d) => { bytes += d.length; });
    p.on('exit', () => { exited = true; });
    const r = await p.wait();
    await Promise.resolve();
    expect(bytes).toBe(HOLD_LIMIT_BYTES);
    expect(exited).toBe(true);
    expect(r.stdoutBytes).toBe(3 * chunk.length);
  });

  it('a deadline kill is in the result', async () => {
    const w = GuestProcess.create(['x'], 10, false);
    w.timedOut();
    w.sink.exited({ exitCode: null, signal: 'SIGKILL' });
    expect((await w.process.wait()).timedOut).toBe(true);
    expect(w.process.timedOut).toBe(true);
  });

  it('names signals both ways', () => {
    expect(signalName(15)).toBe('SIGTERM');
    expect(signalNumber('INT')).toBe(2);
    expect(signalNumber('SIGKILL')).toBe(9);
  });
});
