/**
 * The guest agent as Golem's own Rust host sees it. QEMU is started with gvmi-test's arguments,
 * but everything on the agent channel is test/helpers/golem-host.ts: a port of ya-runtime-vm's
 * guest_agent_comm.rs / response_parser.rs / vmrt.rs / lib.rs (v0.5.2; v0.4.2 the same here),
 * written from the Rust sources and not from src/agent. It connects late (the guest has booted
 * and waits for its host), never sends gvmi-test's handshake, and refuses every byte the Rust
 * host would refuse: the goal is a whole session with zero unparseable bytes.
 *
 * Expected replies come from upstream's init (runtime/init-container/src/init.c at v0.5.2, cited
 * as init.c:LINE; v0.4.2 where it differs) and reference §8.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GolemHost, U64_MAX, type RedirectFd, type RemoteResult, type RunProcessArgs } from '../helpers/golem-host.js';
import { startProviderVm, waitForConsoleLine, WAITING_FOR_HOST, type ProviderVm } from '../helpers/provider-vm.js';
import { TINY_IMAGE_SETTINGS } from '../helpers/busybox-rootfs.js';

const EINVAL = 22;
const ESRCH = 3;
const ENOENT = 2;
const ENXIO = 6;
/** init.c:1880-2041 sends the -1 of a failed ioctl helper as its u32 error code. */
const MINUS_ONE = 4294967295;

/** Bounded waits for outcomes (TCG on a shared 2-core machine can be slow; nothing is timed). */
const WAIT_MS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves once `path` exists on this host (bounded by `timeoutMs` for a stuck guest). */
async function waitForFile(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await stat(path).then(() => true, () => false))) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** lib.rs:328-373 run_command: the image Env, uid/gid 0 (no numeric User), cwd = WorkingDir. */
const IMAGE_ENV = TINY_IMAGE_SETTINGS.env;
const IMAGE_CWD = TINY_IMAGE_SETTINGS.workdir;
/** lib.rs:363-367: what a requestor's process gets: fd 0 none, fd 1 and 2 PIPE_CYCLIC 0x1000. */
const REQUESTOR_FDS = [undefined, { kind: 'pipeCyclic', size: 4096n }, { kind: 'pipeCyclic', size: 4096n }] as const satisfies RunProcessArgs['fds'];
const NO_RFD = [undefined, undefined, undefined] as const satisfies RunProcessArgs['fds'];

function run(argv: string[], fds: RunProcessArgs['fds'] = REQUESTOR_FDS, extra: Partial<RunProcessArgs> = {}): RunProcessArgs {
  return { bin: argv[0]!, argv, env: IMAGE_ENV, uid: 0, gid: 0, fds, cwd: IMAGE_CWD, ...extra };
}
function sh(script: string, fds: RunProcessArgs['fds'] = REQUESTOR_FDS): RunProcessArgs {
  return run(['/bin/sh', '-c', script], fds);
}

const ok = <T>(value: T): RemoteResult<T> => ({ ok: true, value });
const err = (code: number): RemoteResult<never> => ({ ok: false, code });

function valueOf<T>(r: RemoteResult<T>, what: string): T {
  if (!r.ok) throw new Error(`${what}: ERR ${r.code}`);
  return r.value;
}

/** The session on one VM: every connection made to it, and the one in use. */
class Session {
  vm!: ProviderVm;
  host!: GolemHost;
  readonly connections: GolemHost[] = [];

  async connect(): Promise<GolemHost> {
    this.host = await GolemHost.connect(this.vm.agentSocket, { timeoutSec: 10, connectionNumber: this.connections.length, replyTimeoutMs: WAIT_MS });
    this.connections.push(this.host);
    return this.host;
  }

  async consoleTail(lines = 30): Promise<string> {
    const text = await readFile(this.vm.consoleLog, 'utf8').catch(() => '');
    return text.split('\n').slice(-lines).join('\n');
  }

  /** Everything the Rust host would have refused so far, on every connection (empty = clean). */
  problems(): string[] {
    return this.connections.flatMap((c) => c.problems());
  }

  async expectClean(): Promise<void> {
    const problems = this.problems();
    expect(problems, problems.length ? `${problems.join('\n')}\n--- console tail ---\n${await this.consoleTail()}` : '').toEqual([]);
  }

  /** RUN_PROCESS that must be answered OK_U64. */
  async start(args: RunProcessArgs): Promise<bigint> {
    return valueOf(await this.host.runProcess(args), `RUN_PROCESS ${args.argv.join(' ')}`);
  }

  /** RUN_PROCESS, then its PROCESS_DIED. */
  async runToEnd(args: RunProcessArgs): Promise<{ id: bigint; status: number; exitType: string }> {
    const id = await this.start(args);
    const died = await this.host.waitDied(id, WAIT_MS);
    return { id, status: died.status, exitType: died.exitType };
  }

  /** The whole default (file-backed) output of fd `fd` of process `id`, or its ERR. */
  async fileOutput(id: bigint, fd: number): Promise<RemoteResult<string>> {
    const r = await this.host.queryOutput(id, fd, 0n, U64_MAX);
    return r.ok ? ok(r.value.toString('utf8')) : r;
  }

  volume(guestPath: string): string {
    const v = this.vm.volumes.find((m) => m.guestPath === guestPath);
    if (!v) throw new Error(`no volume at ${guestPath}`);
    return v.hostPath;
  }
}

/** What `seq a b` prints. */
function seqOutput(a: number, b: number): Buffer {
  const lines: string[] = [];
  for (let i = a; i <= b; i++) lines.push(String(i));
  return Buffer.from(`${lines.join('\n')}\n`);
}

for (const profile of ['0.4', '0.5'] as const) {
  describe(`upstream's Rust host against runtime ${profile}`, () => {
    const s = new Session();

    beforeAll(async () => {
      s.vm = await startProviderVm({ image: inject('tinyImage'), runtime: profile });
      // Connect late: the Rust host may come whenever it likes (QEMU listens, wait=off). Late is
      // after the guest has booted and waits for its host, which its console says.
      await waitForConsoleLine(s.vm, WAITING_FOR_HOST, 1, WAIT_MS);
      expect(s.vm.qemu.running, `QEMU ended before the host connected: ${s.vm.qemu.stderr()}\n${await s.consoleTail()}`).toBe(true);
      await s.connect();
    }, 120_000);

    afterAll(async () => {
      for (const c of s.connections) await c.close().catch(() => {});
      await s.vm?.dispose();
    });

    it('the guest says nothing until the host speaks; MOUNT_VOLUME of each volume is OK (vmrt.rs:245-252)', async () => {
      // reference §8 "The guest sends nothing unprompted"; any unsolicited message would be one the
      // Rust host cannot place (an extension type, a reply to no request).
      await sleep(1000);
      expect(s.host.parser.receivedBytes, 'bytes the guest sent before the first request').toBe(0);
      expect(s.vm.volumes.map((v) => [v.tag, v.guestPath])).toEqual([['mnt0', '/golem/input'], ['mnt1', '/golem/output']]);
      for (const v of s.vm.volumes) expect(await s.host.mount(v.tag, v.guestPath), `mount ${v.tag}`).toEqual(ok(undefined));
      await s.expectClean();
    });

    it('MOUNT_VOLUME refusals: `..` and relative paths EINVAL, an unknown tag ENOENT (init.c:424-485, 1597-1647)', async () => {
      expect(await s.host.mount('mnt0', '/golem/../etc')).toEqual(err(EINVAL));
      expect(await s.host.mount('mnt0', '/golem/./x')).toEqual(err(EINVAL));
      expect(await s.host.mount('mnt0', 'golem/relative')).toEqual(err(EINVAL));
      expect(await s.host.mount('mnt7', '/golem/no-such-tag')).toEqual(err(ENOENT));
      await s.expectClean();
    });

    it('RUN_PROCESS without any RFD: id 1, output in files under /var/tmp/guest_agent_private/fds/<id>/<fd>, no notifications, offsets honoured (init.c:1127-1344, 1649-1822)', async () => {
      const first = await s.runToEnd(sh('echo hello-file; echo err-file >&2', NO_RFD));
      // get_next_id (init.c:1003-1007): the first process of a VM is 1.
      expect(first.id).toBe(1n);
      expect([first.status, first.exitType]).toEqual([0, 'exited']);
      const id = first.id;
      expect(s.host.notifications.filter((n) => n.notification.type === 'outputAvailable' && n.notification.id === id)).toEqual([]);
      expect(await s.fileOutput(id, 1)).toEqual(ok('hello-file\n'));
      expect(await s.fileOutput(id, 2)).toEqual(ok('err-file\n'));
      // Files are read at the offset asked for, up to len (do_query_output_path, init.c:1649-1719).
      const at6 = await s.host.queryOutput(id, 1, 6n, U64_MAX);
      expect(at6.ok && at6.value.toString()).toBe('file\n');
      const first5 = await s.host.queryOutput(id, 1, 0n, 5n);
      expect(first5.ok && first5.value.toString()).toBe('hello');
      // ... and reading does not consume: the same bytes again.
      expect(await s.fileOutput(id, 1)).toEqual(ok('hello-file\n'));
      // An offset at or past the end: ENXIO (init.c:1670-1674).
      expect(await s.host.queryOutput(id, 1, 11n, U64_MAX)).toEqual(err(ENXIO));
      // fd 0 is an empty file too: reading it gives end of file at once.
      const stdin = await s.runToEnd(sh('cat; echo stdin-was-empty', NO_RFD));
      expect(await s.fileOutput(stdin.id, 1)).toEqual(ok('stdin-was-empty\n'));
      // The files are where upstream keeps them, inside the image root.
      const cat = await s.runToEnd(run(['/bin/cat', `/var/tmp/guest_agent_private/fds/${id}/1`, `/var/tmp/guest_agent_private/fds/${id}/2`], NO_RFD));
      expect(cat.status).toBe(0);
      expect(await s.fileOutput(cat.id, 1)).toEqual(ok('hello-file\nerr-file\n'));
      // Exited with output still in its files: kept, and KILL says ESRCH (init.c:1508-1527).
      expect(await s.host.kill(id)).toEqual(err(ESRCH));
      await s.expectClean();
    });

    it('RFD FILE: stdout opened O_WRONLY|O_CREAT without O_TRUNC, stdin O_RDONLY, a relative path EINVAL (init.c:698-743)', async () => {
      const outFile = '/golem/output/rfd-file.txt';
      const stdoutToFile: RunProcessArgs['fds'] = [undefined, { kind: 'file', path: outFile }, undefined];
      expect((await s.runToEnd(sh('echo AAAAAAAA', stdoutToFile))).status).toBe(0);
      const second = await s.runToEnd(sh('echo bb', stdoutToFile));
      expect(second.status).toBe(0);
      // No O_TRUNC: the shorter second write lands over the start of the first.
      expect(await readFile(join(s.volume('/golem/output'), 'rfd-file.txt'), 'utf8')).toBe('bb\nAAAAA\n');
      // QUERY_OUTPUT of a FILE fd reads that file (init.c:1777-1785).
      expect(await s.fileOutput(second.id, 1)).toEqual(ok('bb\nAAAAA\n'));

      await writeFile(join(s.volume('/golem/input'), 'in.txt'), 'from the requestor\n', { mode: 0o644 });
      const stdinFromFile: RunProcessArgs['fds'] = [{ kind: 'file', path: '/golem/input/in.txt' }, undefined, undefined];
      const cat = await s.runToEnd(run(['/bin/cat'], stdinFromFile));
      expect(cat.status).toBe(0);
      expect(await s.fileOutput(cat.id, 1)).toEqual(ok('from the requestor\n'));

      const relative: RunProcessArgs['fds'] = [undefined, { kind: 'file', path: 'relative.txt' }, undefined];
      expect(await s.host.runProcess(sh('echo never', relative))).toEqual(err(EINVAL));
      await s.expectClean();
    });

    it('process ids: a failed spawn uses one up, an RFD refused while parsing does not (init.c:1003-1007, 1346-1399)', async () => {
      const a = await s.runToEnd(run(['/bin/true'], NO_RFD));
      const relative: RunProcessArgs['fds'] = [undefined, { kind: 'file', path: 'relative.txt' }, undefined];
      expect(await s.host.runProcess(run(['/bin/true'], relative))).toEqual(err(EINVAL));
      const badSize: RunProcessArgs['fds'] = [undefined, { kind: 'pipeBlocking', size: 1000n }, undefined];
      expect(await s.host.runProcess(run(['/bin/true'], badSize))).toEqual(err(EINVAL));
      const zero: RunProcessArgs['fds'] = [undefined, undefined, { kind: 'pipeCyclic', size: 0n }];
      expect(await s.host.runProcess(run(['/bin/true'], zero))).toEqual(err(EINVAL));
      const b = await s.runToEnd(run(['/bin/true'], NO_RFD));
      expect(b.id).toBe(a.id + 2n);
      await s.expectClean();
    });

    it('RFD PIPE_BLOCKING and PIPE_CYCLIC 4096: OUTPUT_AVAILABLE, QUERY as vmrt.rs does, the refusals, KILL → PROCESS_DIED(9, killed) (init.c:1529-1573, 1721-1878)', async () => {
      const fds: RunProcessArgs['fds'] = [undefined, { kind: 'pipeBlocking', size: 4096n }, { kind: 'pipeCyclic', size: 4096n }];
      const id = await s.start(sh('echo to-blocking; echo to-cyclic >&2; exec sleep 1000', fds));
      await s.host.waitFor(() => s.host.output(id, 1).toString() === 'to-blocking\n' && s.host.output(id, 2).toString() === 'to-cyclic\n', WAIT_MS, 'the output of both pipes');
      const notified = s.host.notifications.flatMap(({ notification: n }) => (n.type === 'outputAvailable' && n.id === id ? [n.fd] : []));
      expect(notified.sort()).toEqual([1, 2]);

      // QUERY refusals (init.c:1760-1773, 1787-1792).
      expect(await s.host.queryOutput(id, 1, 1n, U64_MAX), 'an offset on a pipe').toEqual(err(EINVAL));
      expect(await s.host.queryOutput(id, 0, 0n, U64_MAX), 'fd 0').toEqual(err(EINVAL));
      expect(await s.host.queryOutput(id, 1, 0n, 0n), 'len 0').toEqual(err(EINVAL));
      expect(await s.host.queryOutput(id, 3, 0n, U64_MAX), 'fd 3').toEqual(err(EINVAL));
      expect(await s.host.queryOutput(0n, 1, 0n, U64_MAX), 'id 0').toEqual(err(EINVAL));
      expect(await s.host.queryOutput(999_999n, 1, 0n, U64_MAX), 'unknown id').toEqual(err(ESRCH));
      // An empty pipe buffer of a live process: OK_BYTES with nothing.
      const empty = await s.host.queryOutput(id, 1, 0n, U64_MAX);
      expect(empty.ok && empty.value.length).toBe(0);

      expect(await s.host.kill(id)).toEqual(ok(undefined));
      const died = await s.host.waitDied(id, WAIT_MS);
      expect([died.status, died.exitType]).toEqual([9, 'killed']);
      // Dead and drained: forgotten (init.c:399-404) — KILL EINVAL, QUERY ESRCH.
      await s.host.waitForgotten(id, WAIT_MS);
      expect(await s.host.kill(id)).toEqual(err(EINVAL));
      expect(await s.host.queryOutput(id, 1, 0n, U64_MAX)).toEqual(err(ESRCH));
      expect(await s.host.kill(0n), 'id 0').toEqual(err(EINVAL));
      expect(await s.host.kill(999_999n), 'unknown id').toEqual(err(EINVAL));
      await s.expectClean();
    });

    it('a slow host: the buffer keeps the OLDEST 4096 bytes, and what is still in the pipe when the drained process is forgotten is dropped (init.c:1836-1878, 1813-1816)', async () => {
      const expected = seqOutput(100_000, 102_999); // 21,000 bytes: all fit in the pipe, so seq exits at once
      const release = s.host.holdQueries();
      let id: bigint;
      try {
        id = await s.start(sh('seq 100000 102999'));
        const died = await s.host.waitDied(id, WAIT_MS);
        expect([died.status, died.exitType]).toEqual([0, 'exited']);
      } finally {
        release();
      }
      await s.host.waitForgotten(id, WAIT_MS);
      // One notification (the buffer went from empty to non-empty once), one query, the first 4096 bytes.
      const notified = s.host.notifications.filter(({ notification: n }) => n.type === 'outputAvailable' && n.id === id);
      expect(notified.map(({ notification: n }) => n.type === 'outputAvailable' && n.fd)).toEqual([1]);
      expect(s.host.output(id, 1)).toEqual(expected.subarray(0, 4096));
      expect(await s.host.queryOutput(id, 1, 0n, U64_MAX), 'the rest is gone with the process').toEqual(err(ESRCH));
      await s.expectClean();
    });

    it('exec and chdir failures: OK, then PROCESS_DIED(9, exited) (init.c:878-999: fds >= 3, the status pipe too, closed before chdir/exec; _exit(EBADF))', async () => {
      for (const args of [
        run(['/no/such/program'], NO_RFD),
        run(['echo', 'BIN without a slash is not searched in PATH'], NO_RFD),
        run(['/bin/true'], NO_RFD, { cwd: '/no/such/directory' }),
      ]) {
        const r = await s.runToEnd(args);
        expect([r.status, r.exitType], `${args.bin} in ${args.cwd}`).toEqual([9, 'exited']);
      }
      await s.expectClean();
    });

    it(`ENV sent: ${profile === '0.4' ? 'the image Env is the environment (v0.4.2 init.c:880-883)' : 'an EMPTY environment (init.c:986-989, PR #201)'}`, async () => {
      const env = await s.runToEnd(run(['/bin/env'], NO_RFD));
      expect(env.status).toBe(0);
      if (profile === '0.4') expect(await s.fileOutput(env.id, 1)).toEqual(ok(IMAGE_ENV.map((e) => `${e}\n`).join('')));
      // env printed nothing: with every output file empty at its death the process was forgotten
      // there and then (init.c:399-404), so the query finds no such process.
      else expect(await s.fileOutput(env.id, 1), 'the output of an env that printed nothing').toEqual(err(ESRCH));
      await s.expectClean();
    });

    it('NET_HOST appends "ip<TAB>hostname" to /etc/hosts (lib.rs:483, init.c:501-531, 2044-2104)', async () => {
      expect(await s.host.addHosts([['peer-node', '192.168.7.1']])).toEqual(ok(undefined));
      const cat = await s.runToEnd(run(['/bin/cat', '/etc/hosts'], NO_RFD));
      const hosts = await s.fileOutput(cat.id, 1);
      expect(hosts.ok && hosts.value.trimEnd().split('\n').pop()).toBe('192.168.7.1\tpeer-node');
      await s.expectClean();
    });

    it('NET_CTL as lib.rs join_network sends it (add_address, create_network): ERR 4294967295, the failed ioctl of a VM without a NIC (init.c:1880-2041)', async () => {
      // v0.5.2 without a NIC answers this. v0.4.2 answers OK: its init makes taps vpn0/inet0 from
      // two extra virtio-serial ports. gvmi-test attaches no network under either profile, on
      // purpose (docs/fidelity.md N2, N3), so 0.4 gets the answer of a VM without a network device.
      expect(await s.host.addAddress('192.168.7.2', '255.255.255.0', 0)).toEqual(err(MINUS_ONE));
      expect(await s.host.createNetwork('192.168.7.0', '255.255.255.0', '192.168.7.1', 0)).toEqual(err(MINUS_ONE));
      await s.expectClean();
    });

    it('disconnect and reconnect: the guest waits for its host (communication.c:10-28) and answers the next connection; a death while nobody listened is told then', async () => {
      // The sleeper ends when the host says so (a file in the input volume), once nobody listens;
      // a watcher marks in the output volume when init has reaped it (its /proc entry is gone:
      // the reap is where init writes PROCESS_DIED, here with no host to read it).
      const sleeper = await s.start(sh('echo $$ > /golem/output/sleeper.pid; until [ -e /golem/input/sleeper.go ]; do sleep 0.05; done', NO_RFD));
      await s.start(sh('until [ -s /golem/output/sleeper.pid ]; do sleep 0.05; done; p=$(cat /golem/output/sleeper.pid); while [ -e /proc/$p ]; do sleep 0.05; done; : > /golem/output/sleeper.reaped', NO_RFD));
      const first = s.host;
      await first.close();
      // The guest has seen its host go (it prints this a second time) ...
      await waitForConsoleLine(s.vm, WAITING_FOR_HOST, 2, WAIT_MS);
      // ... and only then does the sleeper end and get reaped.
      await writeFile(join(s.volume('/golem/input'), 'sleeper.go'), '', { mode: 0o644 });
      await waitForFile(join(s.volume('/golem/output'), 'sleeper.reaped'), WAIT_MS);
      expect(s.vm.qemu.running, `the VM ended without its host\n${await s.consoleTail()}`).toBe(true);
      const second = await s.connect();
      const t = await s.runToEnd(run(['/bin/true'], NO_RFD));
      expect(t.status).toBe(0);
      const died = await second.waitDied(sleeper, WAIT_MS);
      expect([died.status, died.exitType]).toEqual([0, 'exited']);
      expect(first.died(sleeper)).toBeUndefined();
      await s.expectClean();
    });

    it('the provider case: PIPE_CYCLIC 4096 stdout and stderr, a QUERY after each OUTPUT_AVAILABLE, ~100 KiB, 20 runs: what arrives is an in-order prefix (init.c:1793-1878, yagna #3450)', async () => {
      const stdoutExpected = seqOutput(100_000, 114_999); // 105,000 bytes
      const stderrExpected = seqOutput(200_000, 200_999); // 7,000 bytes
      const runs: { id: bigint; stdout: number; stderr: number; lostStdout: number; lostStderr: number; queries: number }[] = [];
      for (let i = 0; i < 20; i++) {
        const queriesBefore = s.host.messages.length;
        const r = await s.runToEnd(sh('seq 100000 114999; seq 200000 200999 >&2'));
        expect([r.status, r.exitType], `run ${i + 1}`).toEqual([0, 'exited']);
        // Nothing more can come once the host has answered every notification of the dead process.
        await s.host.waitForgotten(r.id, WAIT_MS);
        const out = s.host.output(r.id, 1);
        const errOut = s.host.output(r.id, 2);
        expect(stdoutExpected.subarray(0, out.length).equals(out), `run ${i + 1}: stdout (${out.length} bytes) is a prefix of what seq wrote`).toBe(true);
        expect(stderrExpected.subarray(0, errOut.length).equals(errOut), `run ${i + 1}: stderr (${errOut.length} bytes) is a prefix of what seq wrote`).toBe(true);
        // A notified buffer is not empty, so its process cannot be gone when the handler queries it.
        for (const fd of [1, 2]) expect(s.host.outputQueryErrors.get(`${r.id}:${fd}`) ?? [], `run ${i + 1}: the handler's queries on fd ${fd} were answered`).toEqual([]);
        // The query that drained the last buffer of the dead process deleted it (init.c:1813-1816).
        expect(await s.host.queryOutput(r.id, 1, 0n, U64_MAX), `run ${i + 1}: the process is gone`).toEqual(err(ESRCH));
        runs.push({
          id: r.id, stdout: out.length, stderr: errOut.length,
          lostStdout: stdoutExpected.length - out.length, lostStderr: stderrExpected.length - errOut.length,
          queries: s.host.messages.length - queriesBefore,
        });
      }
      const lossy = runs.filter((r) => r.lostStdout > 0 || r.lostStderr > 0);
      console.log([
        `runtime ${profile}: provider case, ${runs.length} runs of ${stdoutExpected.length} B stdout + ${stderrExpected.length} B stderr through PIPE_CYCLIC 4096:`,
        `  ${lossy.length} of ${runs.length} runs lost bytes (upstream drops what is still in the pipe when the query that empties the buffer deletes the process)`,
        ...runs.map((r, i) => `  run ${String(i + 1).padStart(2)} (id ${r.id}): stdout ${r.stdout} B (lost ${r.lostStdout}), stderr ${r.stderr} B (lost ${r.lostStderr}), ${r.queries} messages`),
      ].join('\n'));
      await s.expectClean();
    }, 600_000);

    it('QUIT: OK, then the guest powers off by itself (init.c:644-648, 128-142); the whole session parsed with zero unparseable bytes', async () => {
      expect(await s.host.quit()).toEqual(ok(undefined));
      await s.host.waitClosed(WAIT_MS);
      const exit = await Promise.race([s.vm.exited, sleep(WAIT_MS).then(() => 'still running' as const)]);
      expect(exit, `QEMU after QUIT\n${await s.consoleTail()}`).not.toBe('still running');
      for (const c of s.connections) c.parser.end();
      await s.expectClean();
      const totals = s.connections.map((c) => ({ connection: c.connection, received: c.parser.receivedBytes, unparseable: c.parser.unparseableBytes, messages: c.messages.length }));
      console.log(`runtime ${profile}: ${totals.map((t) => `connection ${t.connection}: ${t.received} bytes, ${t.messages} messages, ${t.unparseable} unparseable`).join('; ')}`);
      for (const t of totals) {
        expect(t.received, `connection ${t.connection} received something`).toBeGreaterThan(0);
        expect(t.unparseable, `connection ${t.connection}: unparseable bytes`).toBe(0);
      }
    });
  });
}

describe('the Rust host connecting at once (vmrt.rs:235: retry while the socket is missing, then MOUNT_VOLUME)', () => {
  const s = new Session();
  afterAll(async () => {
    for (const c of s.connections) await c.close().catch(() => {});
    await s.vm?.dispose();
  });

  it('requests written before the guest has booted are answered in order', async () => {
    s.vm = await startProviderVm({ image: inject('tinyImage'), runtime: '0.5' });
    await s.connect();
    const mounts = s.vm.volumes.map((v) => s.host.mount(v.tag, v.guestPath));
    for (const m of await Promise.all(mounts)) expect(m).toEqual(ok(undefined));
    const r = await s.runToEnd(sh('echo up > /golem/output/up.txt', NO_RFD));
    expect(r.id).toBe(1n);
    expect(r.status).toBe(0);
    expect(await readFile(join(s.volume('/golem/output'), 'up.txt'), 'utf8')).toBe('up\n');
    expect(await s.host.quit()).toEqual(ok(undefined));
    await s.host.waitClosed(WAIT_MS);
    s.host.parser.end();
    await s.expectClean();
    expect(s.host.parser.unparseableBytes).toBe(0);
  }, 180_000);
});
