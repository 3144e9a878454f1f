/**
 * The guest agent against a hostile or dying host: it answers ERR and keeps serving; when the
 * host disappears, QEMU is ended and the VM's temporary directories removed, whatever the guest does.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AgentRequestError } from '../../src/agent/agent-client.js';
import { startVm, type StartedVm } from '../../src/index.js';

let vm: StartedVm;
beforeAll(async () => {
  vm = await startVm({ image: inject('tinyImage') });
});
afterAll(async () => {
  await vm?.stop();
});

// The raw client is internal; tests reach it to speak the protocol badly on purpose.
function client(v: StartedVm) {
  return (v as unknown as { internals: { client: import('../../src/agent/agent-client.js').AgentClient } }).internals.client;
}

describe('a hostile host', () => {
  it('an unknown message type gets ERR EPROTO; the agent keeps serving', async () => {
    const error = await client(vm).request(200, () => {}, 'unknown type').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentRequestError);
    expect((error as AgentRequestError).errno).toBe(71);
    expect((await vm.exec('echo alive')).stdout).toBe('alive\n');
  });

  it('a huge length gets ERR E2BIG; an unknown sub-message gets EPROTO; both survive', async () => {
    const huge = await client(vm).request(2, (w) => w.sub(1).u64(2n ** 50n), 'huge BYTES').catch((e: unknown) => e);
    expect((huge as AgentRequestError).errno).toBe(7);
    const badSub = await client(vm).request(3, (w) => w.sub(77), 'bad subtype').catch((e: unknown) => e);
    expect((badSub as AgentRequestError).errno).toBe(71);
    let answered = 0;
    for (let i = 0; i < 20; i++) if ((await vm.exec(['true'])).exitCode === 0) answered++;
    expect(answered).toBe(20);
  });

  it('a truncated request is answered ETIMEDOUT after 2 s and dropped; the agent keeps serving', async () => {
    const c = client(vm);
    const replies: unknown[] = [];
    const socket = (c as unknown as { socket: import('node:net').Socket }).socket;
    const onData = (d: Buffer): void => { replies.push(d); };
    socket.on('data', onData);
    // msg id 999999, RUN_PROCESS, BIN with a length of 100 but only 3 bytes of it
    const partial = Buffer.concat([Buffer.from([0x3f, 0x42, 0x0f, 0, 0, 0, 0, 0, 2, 1]), Buffer.from([100, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('abc')]);
    socket.write(partial);
    await new Promise((r) => setTimeout(r, 2600));
    socket.off('data', onData);
    const all = Buffer.concat(replies as Buffer[]);
    const at = all.indexOf(Buffer.from([0x3f, 0x42, 0x0f, 0, 0, 0, 0, 0, 3]));
    expect(at).toBeGreaterThanOrEqual(0);
    expect(all.readUInt32LE(at + 9)).toBe(110); // ETIMEDOUT
    let answered = 0;
    for (let i = 0; i < 10; i++) if ((await vm.exec(['true'])).exitCode === 0) answered++;
    expect(answered).toBe(10);
  });

  it('upstream requests gvmi-test does not implement answer EPROTONOSUPPORT', async () => {
    const e = await client(vm).request(5, () => {}, 'UPLOAD_FILE').catch((x: unknown) => x);
    expect((e as AgentRequestError).errno).toBe(93);
  });
});

const hasMuslGcc = (() => {
  try {
    execFileSync('musl-gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Starts a VM in a child process, runs `guestSetup` (a module-scope snippet with `vm` in scope),
 * SIGKILLs the child, and reports whether its QEMU and the VM's temporary directories are gone.
 */
async function killHostOf(guestSetup: string): Promise<{ qemuGone: boolean; leftDirs: string[] }> {
  const script = `
    import { startVm } from ${JSON.stringify(resolve('dist/index.js'))};
    import { dirname } from 'node:path';
    const vm = await startVm({ image: ${JSON.stringify(inject('tinyImage'))} });
    await vm.exec('true');
    ${guestSetup}
    console.log('ready ' + JSON.stringify([dirname(vm.info.consoleLog), ...vm.volumes.map((v) => v.hostPath)]));
    setInterval(() => {}, 1000);
  `;
  const child = execa('node', ['--input-type=module', '-e', script], { reject: false });
  const dirs = await new Promise<string[]>((resolvePromise) => child.stdout!.on('data', (d: Buffer) => {
    const m = /ready (\[.*\])/.exec(d.toString());
    if (m) resolvePromise(JSON.parse(m[1]!) as string[]);
  }));
  let pids: string[] = [];
  try {
    pids = execFileSync('pgrep', ['-P', String(child.pid), 'qemu-system'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch { /* none */ }
  expect(pids).toHaveLength(1);
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
  return { qemuGone: !alive(), leftDirs: left() };
}

describe('a host that dies', () => {
  it('SIGKILL of the host process: no QEMU is left, nor its temporary directories', async () => {
    expect(await killHostOf('')).toEqual({ qemuGone: true, leftDirs: [] });
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
    expect(outcome).toEqual({ qemuGone: true, leftDirs: [] });
  });
});
