/**
 * One way out for every CLI error: `gvmi-test: MESSAGE [CODE]` (commander's own errors too), JSON
 * only when the command's own --json was given, the status README's table gives the code; and a
 * closed output or a missing terminal handled as a Unix tool would.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { capture } from '../../helpers/capture-io.js';

const cli = resolve('dist/cli/main.js');


/** The documented shape: the first line is `gvmi-test: … [code]`, nothing else comes before it. */
const errorLine = (code: string): RegExp => new RegExp(`^gvmi-test: [^\\n]+ \\[${code.replace('.', '\\.')}\\]\\n`);

let dir: string;
let refusing: Server;
let refusingPort: number;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-cli-errors-'));
  await writeFile(join(dir, 'bad.gvmi'), 'not an image at all, no digits');
  // A server that answers every WebSocket upgrade 401, as serve does for a wrong token.
  refusing = createServer((_req, res) => { res.writeHead(401); res.end(); });
  refusing.listen(0, '127.0.0.1');
  await once(refusing, 'listening');
  refusingPort = (refusing.address() as { port: number }).port;
});
afterAll(async () => {
  refusing.closeAllConnections();
  refusing.close();
  await rm(dir, { recursive: true, force: true });
});

describe("commander's own errors take the one error path", () => {
  it.each([
    [['inspect'], /^gvmi-test: inspect: missing required argument 'image' \[usage\]\n {2}hint: gvmi-test inspect --help shows the usage\n$/],
    [['run'], /^gvmi-test: run: missing required argument 'image' \[usage\]\n {2}hint: gvmi-test run --help shows the usage\n$/],
    [['inspect', '--bogus', 'x.gvmi'], /^gvmi-test: inspect: unknown option '--bogus' \[usage\]\n/],
    [['build', 'rootfs'], /^gvmi-test: build: required option '-o, --output <file>' not specified \[usage\]\n/],
    [['no-such-command'], /^gvmi-test: unknown command 'no-such-command' \[usage\]\n {2}hint: gvmi-test --help shows the usage\n$/],
  ])('%j: one line with [usage], a hint, exit 2', async (argv, expected) => {
    const c = capture();
    expect(await runCli(argv, c.io)).toBe(2);
    expect(c.err()).toMatch(expected);
    expect(c.err()).not.toMatch(/^error:/m);
    expect(c.out()).toBe('');
  });

  it('no command: the help, then the error line', async () => {
    const c = capture();
    expect(await runCli([], c.io)).toBe(2);
    expect(c.err()).toMatch(/^Usage: gvmi-test /);
    expect(c.err()).toMatch(/\ngvmi-test: no command given \[usage\]\n {2}hint: gvmi-test --help lists the commands\n$/);
  });

  it('help and version are no errors', async () => {
    const c = capture();
    expect(await runCli(['--version'], c.io)).toBe(0);
    expect(await runCli(['inspect', '--help'], c.io)).toBe(0);
    expect(c.err()).toBe('');
  });

  it('with the command\'s --json, a commander error is a JSON object on stdout too', async () => {
    const c = capture();
    expect(await runCli(['inspect', '--json'], c.io)).toBe(2);
    expect(JSON.parse(c.out())).toMatchObject({ error: { code: 'usage', message: "inspect: missing required argument 'image'" } });
    expect(c.err()).toMatch(errorLine('usage'));
  });
});

describe('--json errors come from the parsed options, not from any --json in argv', () => {
  it("a guest command's own --json (after --) does not turn run's error into JSON", async () => {
    const c = capture();
    expect(await runCli(['run', join(dir, 'bad.gvmi'), '--', '/bin/echo', '--json'], c.io)).toBe(65);
    expect(c.out()).toBe('');
    expect(c.err()).toMatch(/^gvmi-test: [^\n]+ \[image\.[a-z-]+\]\n/);
  });

  it("exec has no --json: the guest command's is the guest's", async () => {
    vi.stubEnv('GVMI_TEST_CONNECT', 'ws://127.0.0.1:1/?token=x');
    try {
      const c = capture();
      expect(await runCli(['exec', '--', '/bin/echo', '--json'], c.io)).toBe(75);
      expect(c.out()).toBe('');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("a nested command's --json does too (network forward to a network that is not running)", async () => {
    vi.stubEnv('XDG_RUNTIME_DIR', dir);
    try {
      const c = capture();
      expect(await runCli(['network', 'forward', 'nosuch', '192.168.7.2:22', '--json'], c.io)).not.toBe(0);
      expect(JSON.parse(c.out())).toMatchObject({ error: { code: 'network.not-found' } });
      expect(c.err()).toMatch(errorLine('network.not-found'));
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("run's own --json does", async () => {
    const c = capture();
    expect(await runCli(['run', '--json', join(dir, 'bad.gvmi'), '--', '/bin/true'], c.io)).toBe(65);
    expect((JSON.parse(c.out()) as { error: { code: string } }).error.code).toMatch(/^image\./);
  });

  it('a non-GvmiTestError is reported as [internal], exit 1, with its stack', async () => {
    const { reportError } = await import('../../../src/cli/report-error.js');
    const c = capture();
    expect(reportError(new TypeError('x is not a function'), c.io)).toBe(1);
    expect(c.err()).toMatch(/^gvmi-test: internal error: x is not a function \[internal\]\n {2}hint: this is a bug/);
    expect(c.err()).toMatch(/\n {4}at /);
  });
});

describe('build: the status README gives the code', () => {
  it('an output in a directory that does not exist: build.output-unwritable, 73 (not 2)', async () => {
    const c = capture();
    expect(await runCli(['build', inject('tinyRootfs'), '-o', join(dir, 'missing', 'dir', 'x.gvmi')], c.io)).toBe(73);
    expect(c.err()).toMatch(errorLine('build.output-unwritable'));
  });
});

describe('exec: a served VM that cannot be reached is connect.*, exit 75, not a usage error', () => {
  it('connection refused, URL from the environment', async () => {
    vi.stubEnv('GVMI_TEST_CONNECT', 'ws://127.0.0.1:1/?token=x');
    try {
      const c = capture();
      expect(await runCli(['exec', '--', '/bin/true'], c.io)).toBe(75);
      expect(c.err()).toMatch(errorLine('connect.failed'));
      expect(c.err()).toContain('ECONNREFUSED');
      expect(c.err()).not.toContain('token=x'); // the token is never printed
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('connection refused, URL from --connect-file', async () => {
    const file = join(dir, 'url');
    await writeFile(file, 'ws://127.0.0.1:1/?token=x\n');
    await chmod(file, 0o600);
    const c = capture();
    expect(await runCli(['exec', '--connect-file', file, '--', '/bin/true'], c.io)).toBe(75);
    expect(c.err()).toMatch(errorLine('connect.failed'));
  });

  it('a server that refuses the token: connect.refused', async () => {
    vi.stubEnv('GVMI_TEST_CONNECT', `ws://127.0.0.1:${refusingPort}/?token=wrong`);
    try {
      const c = capture();
      expect(await runCli(['exec', '--', '/bin/true'], c.io)).toBe(75);
      expect(c.err()).toMatch(errorLine('connect.refused'));
      expect(c.err()).toContain('401');
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

/** Runs the built CLI and waits (bounded) for it to end. */
async function runChild(args: string[], options: { stdin?: 'ignore' | number; closeStdout?: boolean; timeoutMs?: number } = {}) {
  const child = spawn(process.execPath, [cli, ...args], { stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'] });
  // Closed before the child can write a byte: its first write meets a pipe with no reader.
  if (options.closeStdout) child.stdout!.destroy();
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, out, err };
}

describe('a closed output ends the CLI as SIGPIPE ends a Unix tool: quietly, 141', () => {
  it.each([
    [['inspect', '@image']],
    [['inspect', '--json', '@image']],
    [['doctor']],
  ])('%j | head -0', async (args) => {
    const r = await runChild(args.map((a) => (a === '@image' ? inject('tinyImage') : a)), { closeStdout: true });
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 141, signal: null });
    expect(r.err).toBe('');
  });
});

describe('shell --tty without a terminal', () => {
  it('is refused at once as usage, in process', async () => {
    const c = capture();
    expect(await runCli(['shell', '--tty', inject('tinyImage')], c.io)).toBe(2);
    expect(c.err()).toMatch(/^gvmi-test: shell --tty needs a terminal, and stdin and stdout are not one \[usage\]\n {2}hint: .*leave out --tty/);
    expect(c.out()).toBe(''); // no ESC[6n, no VM
  });

  it('stdin from /dev/null: exit 2 with the reason (it used to hang after printing ESC[6n)', async () => {
    const { openSync, closeSync } = await import('node:fs');
    const devNull = openSync('/dev/null', 'r');
    try {
      const r = await runChild(['shell', '--tty', inject('tinyImage')], { stdin: devNull, timeoutMs: 60_000 });
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^gvmi-test: shell --tty needs a terminal, and stdin and stdout are not one \[usage\]/);
      expect(r.out).toBe('');
    } finally {
      closeSync(devNull);
    }
  });
});
