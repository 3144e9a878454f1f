/**
 * Faults: QEMU killed from outside, a guest eating its memory or forking without end, a flood
 * of output. The harness stays responsive, reports what happened, and leaks nothing.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { startVm, type StartedVm } from '../../src/index.js';
import { vmInternalsForTests } from '../../src/vm/started-vm.js';
import { failure } from '../helpers/failure.js';
import { hasCommand } from '../helpers/has-command.js';

const HEAVY = process.env['GVMI_TEST_HEAVY'] === '1';
const hasMuslGcc = hasCommand('musl-gcc');

function qemuPid(vm: StartedVm): number {
  return vmInternalsForTests(vm).qemuPid!;
}


describe('faults', () => {
  it('QEMU killed from outside: every pending call rejects with vm.crashed', async () => {
    const vm = await startVm({ image: inject('tinyImage') });
    try {
      const pending = [failure(vm.exec('sleep 30')), failure(vm.exec('sleep 31'))];
      await new Promise((r) => setTimeout(r, 300));
      process.kill(qemuPid(vm), 'SIGKILL');
      for (const e of await Promise.all(pending)) {
        expect(e.code).toBe('vm.crashed');
        expect(e.message).toMatch(/QEMU exited|guest crashed/);
      }
      expect((await failure(vm.stats())).code).toBe('vm.crashed');
    } finally {
      await vm.stop();
    }
  });

  it.runIf(hasMuslGcc)('a memory hog ends (OOM-killed, or by its timeout when the guest thrashes); the VM and the harness carry on', async () => {
    // A static program that touches memory until it is stopped.
    const dir = await mkdtemp(join(tmpdir(), 'gvmi-hog-'));
    await writeFile(join(dir, 'hog.c'), '#include <stdlib.h>\n#include <string.h>\nint main(void){for(;;){char*p=malloc(1<<20);if(!p)return 3;memset(p,1,1<<20);}}\n');
    execFileSync('musl-gcc', ['-static', '-O1', '-o', join(dir, 'hog'), join(dir, 'hog.c')]);
    await using vm = await startVm({ image: inject('tinyImage'), memory: 256 });
    await vm.upload(join(dir, 'hog'), '/golem/input/hog');
    const started = Date.now();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 50); // the host event loop keeps turning
    const outcome = await vm.exec(['/golem/input/hog'], { timeoutMs: 30_000 }).catch((e: unknown) => e);
    clearInterval(timer);
    if (outcome instanceof Error) {
      // Without swap the guest can thrash (file pages evicted and re-read) instead of invoking
      // the OOM killer; the timeout ends it. docs/reliability.md says so.
      expect((outcome as { code?: string }).code).toBe('exec.timeout');
    } else {
      expect((outcome as { signal: string | null }).signal).toBe('SIGKILL');
      expect(await vm.console()).toMatch(/Out of memory|oom-kill|Killed process/i);
    }
    expect(ticks).toBeGreaterThan(((Date.now() - started) / 50) * 0.5);
    expect(await vm.exec('echo alive', { timeoutMs: 60_000 })).toMatchObject({ stdout: 'alive\n' });
  }, 180_000);

  it('a fork bomb is contained by its timeout; the VM stays usable and stops cleanly', async () => {
    const vm = await startVm({ image: inject('tinyImage') });
    try {
      // the shell stays in the foreground so the timeout, not its exit, ends the bomb
      const bomb = await failure(vm.exec('bomb() { bomb | bomb & }; bomb; sleep 100', { timeoutMs: 3000 }));
      expect(bomb.code).toBe('exec.timeout');
      // its whole process group was killed: the VM answers again
      expect((await vm.exec('echo alive', { timeoutMs: 60_000 })).stdout).toBe('alive\n');
    } finally {
      const t = Date.now();
      await vm.stop();
      expect(Date.now() - t).toBeLessThan(15_000);
    }
  }, 120_000);

  it(`${HEAVY ? '1 GiB' : '64 MiB'} of stdout: exact byte count, host memory bounded`, async () => {
    await using vm = await startVm({ image: inject('tinyImage') });
    const bytes = (HEAVY ? 1024 : 64) * 1024 * 1024;
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    // dd in 64 KiB blocks: the guest writes as fast as it can (busybox head, in small reads, gave
    // ~7 MB/s here, so the host was never the slow side).
    const p = await vm.spawn(`dd if=/dev/zero bs=65536 count=${bytes / 65536} 2>/dev/null`, { maxBuffer: 1024 * 1024 });
    let seen = 0;
    p.on('stdout', (d) => {
      seen += d.length;
      peak = Math.max(peak, process.memoryUsage().rss);
    });
    const r = await p.wait();
    expect(r.stdoutBytes).toBe(bytes);
    expect(seen).toBe(bytes);
    expect(r.truncated).toBe(true); // kept 1 MiB, counted everything
    expect(peak - rssBefore).toBeLessThan(200 * 1024 * 1024);
  }, HEAVY ? 600_000 : 120_000);
});

describe('no leaks', () => {
  // Only what this test process owns: other test files boot VMs in parallel workers.
  let privateTmp = '';
  /** Named, so that a failure says what was left. */
  async function census(): Promise<{ fds: number; children: string[]; tmp: string[] }> {
    const fds = (await readdir('/proc/self/fd')).length;
    const children: string[] = [];
    for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) children.push(stat.slice(0, stat.lastIndexOf(')') + 1));
    }
    const tmp = privateTmp ? await readdir(privateTmp) : [];
    return { fds, children, tmp };
  }

  it(`${HEAVY ? 200 : 12} sequential VMs and ${HEAVY ? '8 × 100' : '4 × 25'} concurrent execs leave no fds, processes or temp dirs`, async () => {
    privateTmp = await mkdtemp(join(tmpdir(), 'gvmi-leak-'));
    await chmod(privateTmp, 0o711);
    // A snapshot directory of its own: the first VM boots and saves, the others restore, so both
    // paths (QMP, the migration socket's directory, the state fd) are counted.
    const snapshots = await mkdtemp(join(tmpdir(), 'gvmi-leak-snapshots-'));
    process.env['GVMI_TEST_SNAPSHOT_DIR'] = snapshots;
    const savedTmp = process.env['TMPDIR'];
    process.env['TMPDIR'] = privateTmp;
    const before = await census();
    const uses: string[] = [];
    for (let i = 0; i < (HEAVY ? 200 : 12); i++) {
      await using vm = await startVm({ image: inject('tinyImage') });
      uses.push(vm.info.snapshot.use);
      expect((await vm.exec(['/bin/true'])).exitCode).toBe(0);
    }
    expect(uses.slice(0, 2)).toEqual(['saved', 'restored']);
    const n = HEAVY ? 8 : 4;
    const vms = await Promise.all(Array.from({ length: n }, () => startVm({ image: inject('tinyImage'), bootTimeoutMs: 300_000 })));
    try {
      await Promise.all(vms.map(async (vm) => {
        for (let i = 0; i < (HEAVY ? 100 : 25); i++) expect((await vm.exec(['/bin/true'])).exitCode).toBe(0);
      }));
    } finally {
      await Promise.all(vms.map((vm) => vm.stop()));
    }
    await new Promise((r) => setTimeout(r, 200));
    const after = await census();
    if (savedTmp === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = savedTmp;
    delete process.env['GVMI_TEST_SNAPSHOT_DIR'];
    await rm(snapshots, { recursive: true, force: true });
    expect(after.fds).toBeLessThanOrEqual(before.fds);
    expect(after.children).toEqual([]);
    expect(after.tmp).toEqual([]);
  }, HEAVY ? 1_800_000 : 300_000);
});
