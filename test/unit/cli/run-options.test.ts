/**
 * How `run` reads its command line, without booting anything: the real program, its run action
 * replaced by one that records what it was given.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../../../src/cli/program.js';
import { parseInput } from '../../../src/cli/run-under.js';
import { GvmiTestError } from '../../../src/errors.js';

interface Parsed {
  image: string;
  command: string[];
  flags: Record<string, unknown>;
}

async function parseRun(args: string[]): Promise<Parsed> {
  const io = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough() };
  const program = createProgram(io);
  let parsed: Parsed | undefined;
  program.commands.find((c) => c.name() === 'run')!.action((image: string, command: string[], flags: Record<string, unknown>) => {
    parsed = { image, command, flags };
  });
  await program.parseAsync(['run', ...args], { from: 'user' });
  return parsed!;
}

describe('run: options end at the command', () => {
  it("options after the command's first word are the command's, without --", async () => {
    const p = await parseRun(['img.gvmi', '/bin/echo', '--timeout', '5', '-q', '--json']);
    expect(p.command).toEqual(['/bin/echo', '--timeout', '5', '-q', '--json']);
    expect(p.flags['timeout']).toBeUndefined();
    expect(p.flags['quiet']).toBeUndefined();
    expect(p.flags['json']).toBeUndefined();
  });

  it('options before the command (and their values) are still gvmi-test’s', async () => {
    const p = await parseRun(['--quiet', 'img.gvmi', '--timeout', '7', '--env', 'A=1', '--input=x:/golem/input/', '/bin/sh', '-c', 'echo $A', '--env']);
    expect(p.image).toBe('img.gvmi');
    expect(p.flags).toMatchObject({ quiet: true, timeout: '7', env: ['A=1'], input: ['x:/golem/input/'] });
    expect(p.command).toEqual(['/bin/sh', '-c', 'echo $A', '--env']);
  });

  it('an explicit -- works as before, and a -- after the command word is the command’s', async () => {
    expect((await parseRun(['img.gvmi', '--json', '--', '/bin/echo', '--json'])).command).toEqual(['/bin/echo', '--json']);
    expect((await parseRun(['img.gvmi', '/bin/echo', '--', 'x'])).command).toEqual(['/bin/echo', '--', 'x']);
  });

  it('--script takes a host path; the words are its arguments', async () => {
    const p = await parseRun(['img.gvmi', '--script', '/abs/job.sh', 'one', '--two']);
    expect(p.flags['script']).toBe('/abs/job.sh');
    expect(p.command).toEqual(['one', '--two']);
  });

  it('--no-stdin', async () => {
    expect((await parseRun(['img.gvmi', '/bin/true'])).flags['stdin']).toBe(true);
    expect((await parseRun(['img.gvmi', '--no-stdin', '/bin/true'])).flags['stdin']).toBe(false);
  });
});

describe('run --input', () => {
  it('a guest path ending in / is a directory to put the file in, under its own name', () => {
    expect(parseInput('data/x.txt:/golem/input/', '/golem/input').guest).toBe('/golem/input/x.txt');
    expect(parseInput('x.txt:/golem/input/sub/', '/golem/input').guest).toBe('/golem/input/sub/x.txt');
    expect(parseInput('x.txt:/golem/input/y.txt', '/golem/input').guest).toBe('/golem/input/y.txt');
    expect(parseInput('x.txt', '/golem/input').guest).toBe('/golem/input/x.txt');
  });

  it('with no volume to put it in: the fix is a VOLUME in the image, not --volume (no provider mounts one)', () => {
    let error: unknown;
    try {
      parseInput('x.txt', undefined);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GvmiTestError);
    expect((error as GvmiTestError).code).toBe('transfer.not-in-volume');
    expect((error as GvmiTestError).hint).toContain('VOLUME');
    expect((error as GvmiTestError).hint).not.toContain('--volume');
  });
});

describe('exec: options end at the command too', () => {
  it("`exec /bin/echo --timeout 5` gives --timeout to the command", async () => {
    const io = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough() };
    const program = createProgram(io);
    let parsed: { command: string[]; flags: Record<string, unknown> } | undefined;
    program.commands.find((c) => c.name() === 'exec')!.action((command: string[], flags: Record<string, unknown>) => {
      parsed = { command, flags };
    });
    await program.parseAsync(['exec', '--timeout', '3', '/bin/echo', '--timeout', '5'], { from: 'user' });
    expect(parsed!.command).toEqual(['/bin/echo', '--timeout', '5']);
    expect(parsed!.flags['timeout']).toBe('3');
  });
});
