/**
 * The built CLI told to stop — SIGINT, SIGTERM, SIGHUP, or its output closed — while a VM runs:
 * it stops the VM and exits 128+N (141 for a closed pipe), and at that moment nothing is left:
 * no QEMU, no gvmi-vm-* or gvmi-vol-* directory in its (private) TMPDIR. (Not left for the orphan
 * reaper to clean up later: that is for a SIGKILLed process.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasCommand } from '../helpers/has-command.js';

const cli = resolve('dist/cli/main.js');
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const STATUS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-cli-signals-'));
  await chmod(dir, 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

let serial = 0;
/** A TMPDIR for one CLI run: everything the CLI makes goes there (QEMU, as nobody, must reach it). */
async function privateTmp(): Promise<string> {
  const tmp = join(dir, `tmp-${++serial}`);
  await mkdir(tmp);
  await chmod(tmp, 0o755);
  return tmp;
}

/** Processes (QEMU above all) still using `tmp`; the reaper, which leaves on its own, does not count. */
function processesUsing(tmp: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (cmdline.includes(tmp) && !cmdline.includes('gvmi-test-reaper')) found.push(`${pid}: ${cmdline.slice(0, 200)}`);
  }
  return found;
}

/** Waits (bounded) until `text()` matches. */
async function waitFor(what: RegExp, text: () => string, child: ChildProcess, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!what.test(text())) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the CLI exited before ${what}:\n${text()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${text()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Ending { code: number | null; signal: NodeJS.Signals | null; left: string[]; processes: string[]; stderr: string }

/** Starts the CLI in `tmp`; `ending` resolves when it exits, with what was left at that moment. */
function startCli(args: string[], tmp: string) {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, TMPDIR: tmp }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const ending = new Promise<Ending>((resolveEnding) => {
    child.once('exit', (code, signal) => {
      // Looked at the moment the CLI is gone, before anything else can tidy up.
      const left = readdirSync(tmp);
      const processes = processesUsing(tmp);
      child.once('close', () => resolveEnding({ code, signal, left, processes, stderr: err }));
    });
  });
  return { child, ending, out: () => out, err: () => err };
}

describe('gvmi-test stopped by a signal stops its VM first, and exits 128+N', () => {
  it.each(SIGNALS)('run, %s while the command runs', async (signal) => {
    const tmp = await privateTmp();
    const cliRun = startCli(['run', inject('tinyImage'), '--quiet', '--', '/bin/echo READY; exec /bin/sleep 100'], tmp);
    await waitFor(/READY/, cliRun.out, cliRun.child);
    cliRun.child.kill(signal);
    const end = await cliRun.ending;
    expect({ code: end.code, signal: end.signal }, end.stderr).toEqual({ code: STATUS[signal], signal: null });
    expect(end.left).toEqual([]);
    expect(end.processes).toEqual([]);
    expect(end.stderr).toBe(''); // no error for what the stop made fail
  }, 180_000);

  it('run, SIGTERM as soon as the VM is being made (the start is aborted and rolled back)', async () => {
    const tmp = await privateTmp();
    const cliRun = startCli(['run', inject('tinyImage'), '--quiet', '--', '/bin/true'], tmp);
    await waitFor(/gvmi-vm-/, () => readdirSync(tmp).join(' '), cliRun.child);
    cliRun.child.kill('SIGTERM');
    const end = await cliRun.ending;
    expect({ code: end.code, signal: end.signal }, end.stderr).toEqual({ code: 143, signal: null });
    expect(end.left).toEqual([]);
    expect(end.processes).toEqual([]);
  }, 180_000);

  it.each(SIGNALS)('shell (lines from a pipe), %s while a line runs', async (signal) => {
    const tmp = await privateTmp();
    const shell = startCli(['shell', inject('tinyImage')], tmp);
    shell.child.stdin!.write('echo READY; sleep 100\n'); // stdin stays open: no Ctrl-D
    await waitFor(/READY/, shell.out, shell.child);
    shell.child.kill(signal);
    const end = await shell.ending;
    expect({ code: end.code, signal: end.signal }, end.stderr).toEqual({ code: STATUS[signal], signal: null });
    expect(end.left).toEqual([]);
    expect(end.processes).toEqual([]);
  }, 180_000);

  // `shell --tty` needs a terminal: script(1) gives it one. A small wrapper in it starts the CLI,
  // hands the test its pid, and writes down how it ended and what was left at that moment.
  const hasScript = hasCommand('script');
  it.runIf(hasScript).each(SIGNALS)('shell --tty (in a terminal), %s while the guest shell runs', async (signal) => {
    const tmp = await privateTmp();
    const wrapper = join(tmp, '..', `tty-wrapper-${serial}.mjs`);
    const result = join(tmp, '..', `tty-result-${serial}.json`);
    const pidFile = join(tmp, '..', `tty-pid-${serial}`);
    await writeFile(wrapper, `
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
const child = spawn(process.execPath, ${JSON.stringify([cli, 'shell', '--tty', inject('tinyImage')])}, { stdio: 'inherit', env: { ...process.env, TMPDIR: ${JSON.stringify(tmp)} } });
writeFileSync(${JSON.stringify(pidFile)}, String(child.pid));
child.on('exit', (code, signal) => {
  writeFileSync(${JSON.stringify(result)}, JSON.stringify({ code, signal, left: readdirSync(${JSON.stringify(tmp)}) }));
});
`);
    const term = spawn('script', ['-qfec', `${process.execPath} ${wrapper}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    term.stdout.on('data', (d: Buffer) => { screen += d.toString(); });
    await waitFor(/gvmi-test shell: volume /, () => screen, term);
    term.stdin.write('echo READY-$((6*7))\r');
    await waitFor(/READY-42/, () => screen, term);
    const pid = Number(await readFile(pidFile, 'utf8'));
    process.kill(pid, signal);
    await once(term, 'exit');
    const end = JSON.parse(await readFile(result, 'utf8')) as { code: number | null; signal: string | null; left: string[] };
    expect({ code: end.code, signal: end.signal }, screen).toEqual({ code: STATUS[signal], signal: null });
    expect(end.left).toEqual([]);
    expect(processesUsing(tmp)).toEqual([]);
  }, 180_000);
});

describe('gvmi-test serve', () => {
  it.each(SIGNALS)('%s ends serving in its own order: exit 0, the URL file (a token) removed, nothing left', async (signal) => {
    const tmp = await privateTmp();
    const urlFile = join(dir, `url-${serial}`);
    const serve = startCli(['serve', inject('tinyImage'), '--url-file', urlFile], tmp);
    await waitFor(/serving; Ctrl-C stops the VM/, serve.err, serve.child);
    serve.child.kill(signal);
    const end = await serve.ending;
    expect({ code: end.code, signal: end.signal }, end.stderr).toEqual({ code: 0, signal: null });
    expect(end.stderr).toMatch(/gvmi-test: stopped\n$/);
    expect(end.left).toEqual([]);
    expect(end.processes).toEqual([]);
    await expect(readFile(urlFile)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 180_000);
});

describe('gvmi-test run | head -2', () => {
  it('the closed pipe stops the VM; exit 141, quietly, nothing left', async () => {
    const tmp = await privateTmp();
    const cliRun = startCli(['run', inject('tinyImage'), '--quiet', '--', 'while :; do echo line; done'], tmp);
    await waitFor(/line\nline\n/, cliRun.out, cliRun.child);
    cliRun.child.stdout.destroy(); // as head does after its two lines
    const end = await cliRun.ending;
    expect({ code: end.code, signal: end.signal }, end.stderr).toEqual({ code: 141, signal: null });
    expect(end.left).toEqual([]);
    expect(end.processes).toEqual([]);
    expect(end.stderr).toBe('');
  }, 180_000);

  it('inspect | head -1 as a shell runs it: no stack trace, head gets its line', async () => {
    const sh = spawn('/bin/bash', ['-c', `set -o pipefail; ${process.execPath} ${cli} inspect ${inject('tinyImage')} | head -1; echo "statuses \${PIPESTATUS[*]}" >&2`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    sh.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    sh.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    await once(sh, 'close');
    expect(out).toBe(`${inject('tinyImage')}\n`);
    // 141 when head left before inspect's last write, 0 when every line fitted in the pipe first.
    expect(err).toMatch(/^statuses (141|0) 0\n$/);
  });
});
