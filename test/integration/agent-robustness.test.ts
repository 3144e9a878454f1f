/**
 * The guest agent against a host that speaks the protocol badly (it does what upstream's init
 * does: answers, or stops the VM where upstream's dies, and gvmi-test says so), and against a host
 * that dies (QEMU is ended and the VM's temporary directories removed, whatever the guest does).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { describe, expect, inject, it } from 'vitest';
import { AgentRequestError } from '../../src/agent/agent-client.js';
import { startVm, type StartedVm } from '../../src/index.js';
import { describeWithVm } from '../../src/vitest/index.js';
import { vmInternalsForTests } from '../../src/vm/started-vm.js';
import { hasCommand } from '../helpers/has-command.js';

// The raw client is internal; tests reach it to speak the protocol badly on purpose.
function client(v: StartedVm) {
  return vmInternalsForTests(v).client;
}

describeWithVm('a host speaking the protocol badly: the guest does what upstream\'s init does', { image: inject('tinyImage'), testTimeoutMs: 12_000 }, (vm) => {
  /** A VM of its own: these requests stop it, as they stop a provider's. */
  async function stoppedBy(send: (c: ReturnType<typeof client>) => Promise<unknown>): Promise<{ answer: unknown; later: unknown }> {
    const own = await startVm({ image: inject('tinyImage') });
    try {
      const answer = await send(client(own)).catch((e: unknown) => e);
      const later = await own.exec('echo still here').catch((e: unknown) => e);
      return { answer, later };
    } finally {
      await own.stop();
    }
  }

  it('an unknown message type: ERR ENOPROTOOPT, then the VM stops and gvmi-test says a provider\'s would', async () => {
    const { answer, later } = await stoppedBy((c) => c.request(200, () => {}, 'unknown type'));
    expect(answer).toBeInstanceOf(AgentRequestError);
    expect((answer as AgentRequestError).errno).toBe(92);
    expect(later).toMatchObject({ code: 'vm.stopped-like-provider' });
    expect((later as Error).message).toContain("a provider's VM would stop here: unknown request type");
  });

  it('a request type upstream never implemented (SYNC_FS): ERR EPROTONOSUPPORT, then the VM stops', async () => {
    const { answer, later } = await stoppedBy((c) => c.request(8, () => {}, 'SYNC_FS'));
    expect((answer as AgentRequestError).errno).toBe(93);
    expect(later).toMatchObject({ code: 'vm.stopped-like-provider' });
  });

  it('an unknown sub-message: no answer at all, and the VM stops', async () => {
    const { answer, later } = await stoppedBy((c) => c.request(3, (w) => w.sub(77), 'bad subtype'));
    expect(answer).toMatchObject({ code: 'vm.stopped-like-provider' });
    expect((answer as Error).message).toContain('unknown sub-message');
    expect(later).toMatchObject({ code: 'vm.stopped-like-provider' });
  });

  it('a bad redirect is answered EINVAL after the whole request was read; the next request is answered', async () => {
    const bad = await client(vm()).request(2, (w) => {
      w.sub(1).bytes('/bin/true');
      w.sub(2).array(['true']);
      w.sub(6).u32(1).u8(2).u64(1000); // a pipe size that is not a multiple of 4096
    }, 'bad pipe size').catch((e: unknown) => e);
    expect((bad as AgentRequestError).errno).toBe(22);
    const badFd = await client(vm()).request(2, (w) => {
      w.sub(1).bytes('/bin/true');
      w.sub(2).array(['true']);
      w.sub(6).u32(7).u8(1).u64(4096); // fd 7
    }, 'fd out of range').catch((e: unknown) => e);
    expect((badFd as AgentRequestError).errno).toBe(22);
    let answered = 0;
    for (let i = 0; i < 20; i++) if ((await vm().exec(['/bin/true'])).exitCode === 0) answered++;
    expect(answered).toBe(20);
  });

  it('a request cut short is waited for (upstream reads a request to its end), and answered when the rest comes', async () => {
    const c = client(vm());
    const socket = (c as unknown as { socket: import('node:net').Socket }).socket;
    const replies: Buffer[] = [];
    const onData = (d: Buffer): void => { replies.push(d); };
    socket.on('data', onData);
    // msg id 999999, KILL_PROCESS, ID sub-message with only 3 of its 8 bytes
    const id = Buffer.from([0x3f, 0x42, 0x0f, 0, 0, 0, 0, 0]);
    socket.write(Buffer.concat([id, Buffer.from([3, 1]), Buffer.from([5, 0, 0])]));
    await new Promise((r) => setTimeout(r, 1500));
    const before = Buffer.concat(replies);
    socket.write(Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), Buffer.from([0])]));
    // Until its reply has come (bounded: a guest that never answers fails below).
    const reply = Buffer.concat([id, Buffer.from([3])]);
    for (const deadline = Date.now() + 30_000; Buffer.concat(replies).indexOf(reply) < 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    socket.off('data', onData);
    expect(before.indexOf(id)).toBe(-1); // nothing answered while the request was incomplete
    const all = Buffer.concat(replies);
    const at = all.indexOf(Buffer.concat([id, Buffer.from([3])]));
    expect(at).toBeGreaterThanOrEqual(0);
    expect(all.readUInt32LE(at + 9)).toBe(22); // KILL of unknown id 5: EINVAL, as upstream
    expect((await vm().exec('echo after')).stdout).toBe('after\n');
  });
});

const hasMuslGcc = hasCommand('musl-gcc');

/**
 * Starts a VM in a child process, runs `guestSetup` (a module-scope snippet with `vm` in scope),
 * SIGKILLs the child, and reports whether its QEMU and the VM's temporary directories are gone.
 */
async function killHostOf(guestSetup: string, env: Record<string, string> = {}): Promise<{ qemuGone: boolean; leftDirs: string[]; watched: string[] }> {
  const script = `
    import { startVm } from ${JSON.stringify(resolve('dist/index.js'))};
    import { dirname } from 'node:path';
    const vm = await startVm({ image: ${JSON.stringify(inject('tinyImage'))} });
    await vm.exec('true');
    ${guestSetup}
    console.log('ready ' + JSON.stringify([dirname(vm.info.consoleLog), ...vm.volumes.map((v) => v.hostPath)]));
    setInterval(() => {}, 1000);
  `;
  const child = execa('node', ['--input-type=module', '-e', script], { reject: false, env });
  const dirs = await new Promise<string[]>((resolvePromise) => child.stdout!.on('data', (d: Buffer) => {
    const m = /ready (\[.*\])/.exec(d.toString());
    if (m) resolvePromise(JSON.parse(m[1]!) as string[]);
  }));
  let pids: string[] = [];
  try {
    pids = execFileSync('pgrep', ['-P', String(child.pid), 'qemu-system'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch { /* none */ }
  expect(pids).toHaveLength(1);
  // A VM booted to be saved keeps its RAM in a directory of /dev/shm (named on QEMU's command line).
  const memoryDir = /mem-path=(\/dev\/shm\/gvmi-ram-[^/,\0]+)/.exec(readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8'))?.[1];
  if (memoryDir) dirs.push(memoryDir);
  child.kill('SIGKILL');
  await child;
  // Bounded wait for an outcome (no timing is asserted: the reaper acts within milliseconds).
  const deadline = Date.now() + 30_000;
  const alive = (): boolean => {
    try {
      process.kill(Number(pids[0]), 0);
      return true;
    } catch {
      return false;
    }
  };
  const left = (): string[] => dirs.filter((d) => existsSync(d));
  while (Date.now() < deadline && (alive() || left().length > 0)) await new Promise((r) => setTimeout(r, 100));
  return { qemuGone: !alive(), leftDirs: left(), watched: dirs };
}

describe('a host that dies', () => {
  it('SIGKILL of the host process: no QEMU is left, nor its temporary directories', async () => {
    expect(await killHostOf('')).toMatchObject({ qemuGone: true, leftDirs: [] });
  });

  it('SIGKILL of the host of a VM that booted and saved its state: its RAM directory in /dev/shm goes too', async () => {
    const snapshots = await mkdtemp(join(tmpdir(), 'gvmi-robust-snapshots-'));
    try {
      const outcome = await killHostOf('if (vm.info.snapshot.use !== "saved") throw new Error("expected a boot and a save");', { GVMI_TEST_SNAPSHOT_DIR: snapshots });
      expect(outcome).toMatchObject({ qemuGone: true, leftDirs: [] });
      // It was there while the VM ran: the check above covered it.
      expect(outcome.watched.filter((d) => d.startsWith('/dev/shm/gvmi-ram-'))).toHaveLength(1);
    } finally {
      await rm(snapshots, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasMuslGcc)('a guest that starves its agent (SCHED_FIFO 99 spinner) cannot keep QEMU alive after the host dies', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gvmi-spinner-'));
    await writeFile(join(dir, 'spin.c'), '#include <sched.h>\nint main(void) { struct sched_param p = { .sched_priority = 99 }; if (sched_setscheduler(0, SCHED_FIFO, &p)) return 1; for (;;) ; }\n');
    execFileSync('musl-gcc', ['-static', '-O1', '-o', join(dir, 'spin'), join(dir, 'spin.c')]);
    const outcome = await killHostOf(`
      await vm.upload(${JSON.stringify(join(dir, 'spin'))}, '/golem/input/spin');
      await vm.spawn(['/golem/input/spin']);
      await new Promise((r) => setTimeout(r, 1000));
    `);
    await rm(dir, { recursive: true, force: true });
    expect(outcome).toMatchObject({ qemuGone: true, leftDirs: [] });
  });
});
