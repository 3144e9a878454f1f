/**
 * Memory out of range is refused before QEMU starts, with the range; the minimum boots and runs
 * a command under both runtimes; and whatever step a boot fails at, QEMU's own words are in the
 * error.
 */
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVm } from '../../src/index.js';
import { runCli } from '../../src/cli/program.js';
import { hostMemoryLimitMiB, MIN_MEMORY_MIB } from '../../src/vm/resource-limits.js';
import { failure } from '../helpers/failure.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-resources-'));
  // QEMU runs unprivileged (as root here): it must reach volume directories made under it
  await chmod(dir, 0o711);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

describe('guest memory out of range', () => {
  it.each([1, 32])('%i MiB: a usage error with the allowed range, and no QEMU started', async (memory) => {
    const privateTmp = await mkdtemp(join(dir, 'tmp-'));
    await chmod(privateTmp, 0o711);
    process.env['TMPDIR'] = privateTmp;
    const e = await failure(startVm({ image: inject('tinyImage'), memory }));
    expect(e.code).toBe('usage');
    expect(e.message).toMatch(new RegExp(`guest memory ${memory} MiB is too little: the guest needs at least ${MIN_MEMORY_MIB} MiB`));
    expect(e.message).toMatch(/allowed here: 64 to \d+ MiB/);
    expect(await readdir(privateTmp)).toEqual([]);
  });

  it('more than the host has available: a usage error saying how much it has', async () => {
    const memory = hostMemoryLimitMiB() + 100_000;
    const e = await failure(startVm({ image: inject('tinyImage'), memory }));
    expect(e.code).toBe('usage');
    expect(e.message).toMatch(new RegExp(`guest memory ${memory} MiB is more than this host has available \\(\\d+ MiB free\\)`));
  });

  it('the CLI: run --memory 1 is one line with the range, exit 2', async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const status = await runCli(['run', inject('tinyImage'), '--memory', '1', '--', '/bin/true'], { stdout, stderr, stdin: new PassThrough() });
    expect(status).toBe(2);
    expect(err).toMatch(/guest memory 1 MiB is too little.*allowed here: 64 to \d+ MiB.*\[usage\]/);
  });

  it.each(['0.4', '0.5'] as const)('the minimum (%s) boots and runs a command', async (runtimeVersion) => {
    await using vm = await startVm({ image: inject('tinyImage'), memory: MIN_MEMORY_MIB, runtimeVersion, snapshot: false });
    // 20 MB into the RAM overlay; dd in 100 kB blocks (busybox head reads in small pieces, ~7 MB/s here).
    const r = await vm.exec('dd if=/dev/zero of=/big bs=100000 count=200 2>/dev/null && echo wrote');
    expect(r.stdout).toBe('wrote\n');
  }, 120_000);
});

describe("QEMU's stderr is in every boot error", () => {
  /**
   * Stands in for QEMU: listens on the agent socket, connects to the monitor as QEMU does, then
   * says what QEMU says when it cannot allocate guest memory, closes the monitor and exits 1 —
   * the step that fails first is the monitor's greeting, not QEMU's exit.
   */
  async function fakeQemu(): Promise<string> {
    const path = join(dir, `fake-qemu-${Date.now()}.cjs`);
    await writeFile(path, `#!${process.execPath}
const net = require('node:net');
const args = process.argv.slice(2);
if (!args.includes('-kernel')) process.exit(0); // -help and other probes
const chardev = (id) => args.find((a, i) => args[i - 1] === '-chardev' && a.startsWith('socket,id=' + id + ','));
const pathOf = (spec) => /path=((?:[^,]|,,)*)/.exec(spec)[1].replace(/,,/g, ',');
const agent = net.createServer(() => {
  const monitor = net.createConnection(pathOf(chardev('qmp')), () => setTimeout(() => {
    process.stderr.write("qemu-system-x86_64: cannot set up guest memory 'microvm.ram': Cannot allocate memory\\n");
    monitor.destroy();
    setTimeout(() => process.exit(1), 300);
  }, 200));
});
agent.listen(pathOf(chardev('agent')));
`);
    await chmod(path, 0o755);
    return path;
  }

  it('QEMU dying while its monitor starts: the error says QEMU exited, and what it said', async () => {
    process.env['GVMI_TEST_QEMU'] = await fakeQemu();
    process.env['GVMI_TEST_SNAPSHOT_DIR'] = await mkdtemp(join(dir, 'snapshots-'));
    const e = await failure(startVm({ image: inject('tinyImage'), snapshot: true, accel: 'tcg' }));
    expect(e.code).toBe('vm.boot-failed');
    expect(e.message).toMatch(/QEMU exited during monitor set-up \(QEMU exit 1\)/);
    expect(e.hint).toContain("QEMU said: qemu-system-x86_64: cannot set up guest memory 'microvm.ram': Cannot allocate memory");
    expect(String(e.details?.['qemuStderr'])).toContain('Cannot allocate memory');
  });
});
