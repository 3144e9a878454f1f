/**
 * What a process started as upstream's init starts it sees, and RUN_PROCESS cases no host of
 * ours sends but upstream handles (docs/fidelity.md rows R2, R7, R13, R14, P11, W17). Raw requests
 * go through the agent client's `request`, after the HELLO gvmi-test's own start sends.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { AgentRequestError, type AgentClient } from '../../src/agent/agent-client.js';
import type { RequestWriter } from '../../src/agent/codec.js';
import { MsgType, RedirectKind, SubRun } from '../../src/agent/protocol.js';
import { startVm, type StartedVm } from '../../src/index.js';
import { describeWithVm } from '../../src/vitest/index.js';
import { vmInternalsForTests } from '../../src/vm/started-vm.js';

function client(v: StartedVm): AgentClient {
  return vmInternalsForTests(v).client;
}

/** A RUN_PROCESS built by hand; resolves with the new id or rejects with the agent's errno. */
async function rawRun(v: StartedVm, build: (w: RequestWriter) => void): Promise<bigint> {
  // Started without a listener: its notifications come as the client's events ('died').
  const reply = await client(v).request(MsgType.RUN_PROCESS, build, 'raw run');
  if (reply.type !== 'ok-u64') throw new Error(`unexpected ${reply.type}`);
  return reply.value;
}

async function errnoOf(promise: Promise<unknown>): Promise<number | undefined> {
  const e = await promise.then(() => undefined, (x: unknown) => x);
  return e instanceof AgentRequestError ? e.errno : undefined;
}

describeWithVm('process facts', { image: inject('tinyImage'), testTimeoutMs: 12_000 }, (vm) => {
  describe('what a process sees', () => {
    it("R13: it is init's child, in init's process group and session (no setsid)", async () => {
      // `; true` makes the shell fork for cut instead of exec'ing it in place
      expect((await vm().exec("cut -d' ' -f4-6 /proc/$$/stat; true")).stdout).toBe('1 0 0\n');
    });

    it('R14: root with every capability, no seccomp filter, no no_new_privs (no sandbox without a GPU)', async () => {
      const r = await vm().exec("grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/$$/status; cat /proc/sys/kernel/cap_last_cap; true");
      const lines = r.stdout.trim().split('\n');
      const last = Number(lines.pop());
      const all = ((1n << BigInt(last + 1)) - 1n).toString(16).padStart(16, '0');
      expect(lines).toEqual([`CapEff:\t${all}`, `CapBnd:\t${all}`, 'NoNewPrivs:\t0', 'Seccomp:\t0']);
    });

    it('P11: only fds 0-2 are open when it starts (upstream closes every other one)', async () => {
      expect((await vm().exec('ls /proc/$$/fd; true')).stdout).toBe('0\n1\n2\n');
    });
  });

  describe('RUN_PROCESS as upstream handles it', () => {
    it('R2: without BIN or without ARG: ERR EFAULT, and no process id is used', async () => {
      const before = (await vm().spawn(['/bin/true'])).id;
      expect(await errnoOf(rawRun(vm(), (w) => w.sub(SubRun.ARG).array(['true'])))).toBe(14);
      expect(await errnoOf(rawRun(vm(), (w) => w.sub(SubRun.BIN).bytes('/bin/true')))).toBe(14);
      expect((await vm().spawn(['/bin/true'])).id).toBe(before + 1n);
    });

    it("R7: without ENV a process gets init's own environment (the kernel's HOME and TERM)", async () => {
      const output = vm().volumes.find((v) => v.guestPath === '/golem/output')!;
      const id = await rawRun(vm(), (w) => {
        // env itself, not a shell (a shell adds a default PATH of its own)
        w.sub(SubRun.BIN).bytes('/bin/env');
        w.sub(SubRun.ARG).array(['env']);
        w.sub(SubRun.RFD).u32(1).u8(RedirectKind.FILE).bytes('/golem/output/env');
      });
      await new Promise<void>((resolve) => {
        const onDied = (pid: bigint): void => { if (pid === id) { client(vm()).off('died', onDied); resolve(); } };
        client(vm()).on('died', onDied);
      });
      const env = (await readFile(join(output.hostPath, 'env'), 'utf8')).split('\n').filter(Boolean).sort();
      expect(env).toEqual(['HOME=/', 'TERM=linux']);
    });

    it('W17: an entrypoint (ENT) that exits stops the VM, as upstream (a second one while it runs: EEXIST)', async () => {
      const own = await startVm({ image: inject('tinyImage') });
      try {
        const ent = (w: RequestWriter, script: string): void => {
          w.sub(SubRun.BIN).bytes('/bin/sh');
          w.sub(SubRun.ARG).array(['sh', '-c', script]);
          w.sub(SubRun.ENT);
        };
        await rawRun(own, (w) => ent(w, 'sleep 1'));
        expect(await errnoOf(rawRun(own, (w) => ent(w, 'true')))).toBe(17);
        const after = await new Promise<unknown>((resolve) => {
          const poll = (): void => void own.exec('/bin/true').then(() => setTimeout(poll, 200), resolve);
          poll();
        });
        expect(after).toMatchObject({ code: 'vm.stopped-like-provider' });
        expect((after as Error).message).toContain("a provider's VM would stop here: the entrypoint exited");
      } finally {
        await own.stop();
      }
    });
  });

  describe('more of upstream\'s RUN / QUERY / KILL semantics', () => {
    it('K2: KILL_PROCESS kills that pid only: what it started lives on', async () => {
      const p = await vm().spawn('/bin/sleep 4242 & wait');
      await new Promise((r) => setTimeout(r, 300));
      await client(vm()).kill(p.id); // the upstream request, not gvmi-test's tree-wide SIGNAL
      expect((await p.wait()).signal).toBe('SIGKILL');
      expect((await vm().exec('ps -o args | grep -c "^/bin/sleep 4242"; true')).stdout).toBe('1\n');
      await vm().exec('pkill -f "sleep 4242"; true');
    });

    it('QO1: QUERY_OUTPUT without an FD sub-message reads fd 1', async () => {
      const id = await rawRun(vm(), (w) => {
        w.sub(SubRun.BIN).bytes('/bin/echo');
        w.sub(SubRun.ARG).array(['echo', 'from fd 1']);
        w.sub(SubRun.RFD).u32(1).u8(RedirectKind.PIPE_BLOCKING).u64(4096);
      });
      let data: Buffer = Buffer.alloc(0);
      for (let i = 0; i < 50 && data.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const reply = await client(vm()).request(MsgType.QUERY_OUTPUT, (w) => w.sub(1).u64(id).sub(4).u64(4096n), 'query without FD').catch(() => undefined);
        if (reply?.type === 'ok-bytes') data = reply.data;
      }
      expect(data.toString()).toBe('from fd 1\n');
    });

    it('R10: a file that is not executable is EACCES at execve: exit 9, and the finding says so', async () => {
      await vm().exec('printf "#!/bin/sh\\necho hi\\n" > /golem/output/plain.sh; chmod 644 /golem/output/plain.sh');
      const r = await vm().exec(['/golem/output/plain.sh']);
      expect(r.exitCode).toBe(9);
      expect(r.execFailure).toMatchObject({ step: 'execve', errnoName: 'EACCES' });
      expect((await vm().diagnose(r))[0]!.message).toContain('is not executable');
    });

    it('W11: an unknown redirect kind stops the VM without an answer, as upstream', async () => {
      const own = await startVm({ image: inject('tinyImage') });
      try {
        const answer = await rawRun(own, (w) => {
          w.sub(SubRun.BIN).bytes('/bin/true');
          w.sub(SubRun.ARG).array(['true']);
          w.sub(SubRun.RFD).u32(1).u8(77);
        }).catch((e: unknown) => e);
        expect(answer).toMatchObject({ code: 'vm.stopped-like-provider' });
        expect((answer as Error).message).toContain('unknown redirect kind');
      } finally {
        await own.stop();
      }
    });
  });
});
