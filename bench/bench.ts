/**
 * `make bench`: every figure beside its baseline, measured in one run, written to
 * bench/RESULTS.md and bench/results.json. BENCH_RUNS (default 5) runs per figure.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { pino } from 'pino';
import { AgentClient } from '../src/agent/agent-client.js';
import { GvmiTestError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';
import { INCOMING_STATE_FD, restoreVmState } from '../src/qemu/migration.js';
import { QmpClient } from '../src/qemu/qmp-client.js';
import { snapshotStatePath } from '../src/snapshot/snapshot-store.js';
import { buildImage } from '../src/image/build-image.js';
import { detectAccelerator } from '../src/qemu/accelerator.js';
import { buildQemuArgs } from '../src/qemu/qemu-args.js';
import { findQemu, findRuntime, qemuSupportsSandbox } from '../src/qemu/runtime-files.js';
import { resolveQemuUser } from '../src/qemu/qemu-user.js';
import { startVm } from '../src/vm/start-vm.js';
import { vmInternalsForTests } from '../src/vm/started-vm.js';
import { makeBusyboxRootfs, TINY_IMAGE_SETTINGS } from '../test/helpers/busybox-rootfs.js';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 5);
/** Start-up figures are the noisiest and the cheapest to repeat. */
const START_RUNS = Math.max(RUNS, 9);
/** BENCH_ONLY=start,restore,suite,exec,memory,build,concurrency runs some sections (RESULTS.md is then not written). */
const only = process.env['BENCH_ONLY']?.split(',');
const wanted = (section: string): boolean => !only || only.includes(section);
const cli = resolve('dist/cli/main.js');

interface Stat { median: number; min: number; max: number; p99?: number; runs: number }
function stat(values: number[], withP99 = false): Stat {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), min: s[0]!, max: s[s.length - 1]!, ...(withP99 ? { p99: at(0.99) } : {}), runs: s.length };
}
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}
async function repeat<T>(n: number, fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await fn());
  return out;
}

/**
 * pairedRatio: the median of run-by-run ratios, for rows whose figure and baseline were measured
 * alternately: on these noisy machines it is steadier than the ratio of the two medians.
 */
interface Row { figure: string; unit: string; value: Stat; baselineName: string; baseline?: Stat; ratio?: number; pairedRatio?: number; note?: string }
function pairedRatio(values: number[], baselines: number[]): number {
  return stat(values.map((v, i) => v / baselines[i]!)).median;
}
const rows: Row[] = [];
function row(r: Omit<Row, 'ratio'>, higherIsBetter = false): void {
  const ratio = r.baseline ? (higherIsBetter ? r.baseline.median / r.value.median : r.value.median / r.baseline.median) : undefined;
  rows.push({ ...r, ...(ratio !== undefined ? { ratio } : {}) });
  console.log(`${r.figure}: ${r.value.median.toFixed(1)} ${r.unit}${r.baseline ? ` vs ${r.baselineName} ${r.baseline.median.toFixed(1)} ${r.unit} (×${ratio!.toFixed(2)}${r.pairedRatio !== undefined ? `, paired ×${r.pairedRatio.toFixed(2)}` : ''})` : ''}`);
}

const work = await mkdtemp(join(tmpdir(), 'gvmi-bench-'));
await chmod(work, 0o711);
try {
  await makeBusyboxRootfs(join(work, 'rootfs'));
  const image = join(work, 'tiny.gvmi');
  await buildImage({ source: join(work, 'rootfs'), output: image, ...TINY_IMAGE_SETTINGS });
  const [runtime, qemu, accelerator] = await Promise.all([findRuntime(), findQemu(), detectAccelerator()]);
  const sandbox = await qemuSupportsSandbox(qemu);
  const qemuUser = await resolveQemuUser();

  // ---- the floor: same QEMU, kernel and devices; an init that powers off at once ----
  const floorDir = join(work, 'floor');
  await mkdir(join(floorDir, 'root'), { recursive: true });
  execFileSync('musl-gcc', ['-static', '-Os', '-o', join(floorDir, 'root/init'), resolve('bench/floor-init.c')]);
  execFileSync('sh', ['-c', `cd ${floorDir}/root && echo init | cpio --quiet -o -H newc --owner=0:0 > ../floor.cpio`]);
  const floorRun = async (): Promise<number> => {
    const sock = join(floorDir, `agent-${Math.random().toString(36).slice(2)}.sock`);
    const vols = [0, 1].map((k) => ({ tag: `mnt${k}`, hostPath: floorDir }));
    const args = buildQemuArgs({
      accelerator, memoryMiB: 512, cpus: 1, kernel: runtime.kernel, initramfs: join(floorDir, 'floor.cpio'), image,
      agentSocket: sock, consoleLog: join(floorDir, 'console.log'), volumes: vols, hostname: 'golem', overlayMiB: 128, runtime: '0.4', sandbox,
      ...(qemuUser ? { runAs: qemuUser.name } : {}),
    });
    // QEMU listens on the agent socket itself (server=on,wait=off): nobody needs to connect.
    return timed(() => execa(qemu, args));
  };
  // Snapshots are saved in a directory of the bench's own, so the first save is measured too.
  process.env['GVMI_TEST_SNAPSHOT_DIR'] = join(work, 'snapshots');
  const cliEnv = { ...process.env };
  const startAndRun = async (snapshot: boolean): Promise<number> => {
    const t = performance.now();
    const v = await startVm({ image, snapshot });
    await v.exec(['/bin/true']);
    const ms = performance.now() - t;
    await v.stop();
    return ms;
  };

  if (wanted('start')) {
    // The first start with snapshots on boots and saves: what it costs once per image/config.
    // Each sample saves into a snapshot directory of its own (the bench's stays for the restores).
    const snapshotsDir = process.env['GVMI_TEST_SNAPSHOT_DIR']!;
    const firstStart = async (): Promise<{ ms: number; bytes: number; saveMs: number }> => {
      process.env['GVMI_TEST_SNAPSHOT_DIR'] = await mkdtemp(join(work, 'first-start-'));
      try {
        const t = performance.now();
        const v = await startVm({ image });
        await v.exec(['/bin/true']);
        const ms = performance.now() - t;
        const info = v.info.snapshot;
        await v.stop();
        if (info.use !== 'saved') throw new Error(`expected a saved snapshot, got ${JSON.stringify(info)}`);
        return { ms, bytes: info.bytes ?? 0, saveMs: info.saveMs ?? 0 };
      } finally {
        process.env['GVMI_TEST_SNAPSHOT_DIR'] = snapshotsDir;
      }
    };
    await (await startVm({ image })).stop(); // the state the restored runs start from
    const firstSaves: { ms: number; bytes: number; saveMs: number }[] = [];
    // Floor, cold and restored runs interleaved, so drift in machine speed hits them all alike.
    const floorSamples: number[] = [];
    const coldCli: number[] = [];
    const coldFirst: number[] = [];
    const restoredCli: number[] = [];
    const restoredFirst: number[] = [];
    for (let i = 0; i < START_RUNS; i++) {
      floorSamples.push(await floorRun());
      coldCli.push(await timed(() => execa('node', [cli, 'run', '--quiet', '--no-snapshot', image, '--', '/bin/true'], { env: cliEnv })));
      coldFirst.push(await startAndRun(false));
      restoredCli.push(await timed(() => execa('node', [cli, 'run', '--quiet', image, '--', '/bin/true'], { env: cliEnv })));
      restoredFirst.push(await startAndRun(true));
      firstSaves.push(await firstStart());
    }
    const floor = stat(floorSamples);
    row({ figure: 'cold `gvmi-test run --no-snapshot tiny.gvmi -- /bin/true`, wall', unit: 'ms', value: stat(coldCli), baselineName: 'floor (QEMU + kernel + init that powers off)', baseline: floor, pairedRatio: pairedRatio(coldCli, floorSamples) });
    row({ figure: 'cold time to first command (startVm + exec true, no snapshot)', unit: 'ms', value: stat(coldFirst), baselineName: 'floor', baseline: floor, pairedRatio: pairedRatio(coldFirst, floorSamples) });
    row({ figure: 'restored time to first command (startVm + exec true, from snapshot)', unit: 'ms', value: stat(restoredFirst), baselineName: 'cold time to first command', baseline: stat(coldFirst), pairedRatio: pairedRatio(restoredFirst, coldFirst) });
    row({ figure: 'restored `gvmi-test run tiny.gvmi -- /bin/true`, wall', unit: 'ms', value: stat(restoredCli), baselineName: 'cold `run --no-snapshot`', baseline: stat(coldCli), pairedRatio: pairedRatio(restoredCli, coldCli) });
    row({ figure: 'restored `gvmi-test run tiny.gvmi -- /bin/true`, wall, against the floor', unit: 'ms', value: stat(restoredCli), baselineName: 'floor', baseline: floor, pairedRatio: pairedRatio(restoredCli, floorSamples) });
    const saveMs = stat(firstSaves.map((f) => f.saveMs)).median;
    const savedMiB = stat(firstSaves.map((f) => f.bytes)).median / 1048576;
    row({ figure: `first start with snapshots on: boot + save (${savedMiB.toFixed(1)} MiB on disk, saved in ${saveMs} ms: median), once per image and configuration`, unit: 'ms', value: stat(firstSaves.map((f) => f.ms)), baselineName: 'cold time to first command', baseline: stat(coldFirst), pairedRatio: pairedRatio(firstSaves.map((f) => f.ms), coldFirst) });
  }

  // ---- raw QEMU restore floor: the same state and arguments, restored by QEMU alone ----
  if (wanted('restore')) {
    // One restored start through gvmi-test, logging the exact QEMU arguments it used.
    const records: { msg?: string; args?: string[] }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => { records.push(JSON.parse(line) as { msg?: string; args?: string[] }); } });
    await (await startVm({ image })).stop(); // saves the snapshot when the start section did not run
    const probe = await startVm({ image, logger, keepVolumes: true });
    const info = probe.info.snapshot;
    await probe.stop();
    const restoreArgs = records.find((r) => r.msg === 'restoring QEMU from a snapshot')?.args;
    if (info.use !== 'restored' || !restoreArgs) throw new Error(`expected a restored VM, got ${JSON.stringify(info)}`);
    // Its private directory (agent socket, console) went with it: the raw runs get their own.
    const privateDir = /\/[^,=]*gvmi-vm-[^/,]*/.exec(restoreArgs.join('\n'))![0];
    const statePath = snapshotStatePath(info.key);
    /** Spawn QEMU with those arguments (the state as fd 3, loaded once QMP asks), connect to the agent, run /bin/true: no HELLO, RESUMED, clock or mounts. */
    const rawRestore = async (): Promise<number> => {
      const dir = await mkdtemp(join(work, 'raw-'));
      await chmod(dir, 0o700);
      const args = restoreArgs.map((a) => a.split(privateDir).join(dir));
      const agentSocket = /path=([^,]*agent-[^,]*\.sock)/.exec(args.join('\n'))![1]!;
      // QEMU connects to QMP (the capability the state needs is set there, then it is loaded).
      const qmpSocket = /socket,id=qmp,path=([^,\n]*)/.exec(args.join('\n'))![1]!;
      const monitor = createServer();
      monitor.listen(qmpSocket);
      await once(monitor, 'listening');
      const t = performance.now();
      const stateFd = openSync(statePath, 'r');
      const qemuProc = spawn(qemu, args, { stdio: ['ignore', 'ignore', 'ignore', stateFd] });
      closeSync(stateFd);
      try {
        const exited = once(qemuProc, 'exit').then(() => { throw new Error(`the raw restore's QEMU exited: ${args.join(' ')}`); });
        const [monitorSocket] = (await Promise.race([once(monitor, 'connection'), exited])) as [Socket];
        monitor.close();
        const qmp = new QmpClient(monitorSocket);
        await qmp.negotiate();
        await restoreVmState(qmp);
        qmp.close();
        const socket = await new Promise<Socket>((done) => {
          const attempt = (): void => {
            const c = createConnection(agentSocket);
            c.once('connect', () => { c.removeAllListeners('error'); done(c); });
            c.once('error', () => { c.destroy(); setTimeout(attempt, 5); });
          };
          attempt();
        });
        const client = new AgentClient(socket, silentLogger);
        await new Promise<void>((done, fail) => {
          void client.runProcess({ argv: ['/bin/true'], env: [] }, { output: () => {}, execFailed: () => fail(new Error('exec failed')), died: () => done(), lost: fail }).catch(fail);
        });
        const ms = performance.now() - t;
        client.close(new GvmiTestError('vm.stopped', 'measured'));
        return ms;
      } finally {
        qemuProc.kill('SIGKILL');
        if (qemuProc.exitCode === null && qemuProc.signalCode === null) await once(qemuProc, 'exit');
        await rm(dir, { recursive: true, force: true });
      }
    };
    if (INCOMING_STATE_FD !== 3) throw new Error('the raw restore hands the state as fd 3');
    const raw: number[] = [];
    const ours: number[] = [];
    for (let i = 0; i < START_RUNS; i++) {
      raw.push(await rawRestore());
      ours.push(await startAndRun(true));
    }
    for (const v of probe.volumes) await rm(v.hostPath, { recursive: true, force: true });
    row({ figure: 'restored time to first command (startVm + exec true, from snapshot)', unit: 'ms', value: stat(ours), baselineName: 'raw QEMU restore floor: the same state and arguments restored by QEMU alone, the guest running /bin/true (no HELLO, RESUMED, clock or mounts)', baseline: stat(raw), pairedRatio: pairedRatio(ours, raw) });
  }

  // ---- per-test VMs in a real vitest suite ----
  if (wanted('suite')) {
    const suiteDir = await mkdtemp(join(work, 'suite-'));
    const fixture = resolve('dist/vitest/index.js');
    const TESTS = 20;
    await writeFile(join(suiteDir, 'vitest.config.mjs'), `export default { test: { include: ['*.test.ts'], testTimeout: 300000, hookTimeout: 300000 } };\n`);
    await writeFile(join(suiteDir, 'per-test.test.ts'), [
      `import { vmTest } from ${JSON.stringify(fixture)};`,
      `const it = vmTest({ image: ${JSON.stringify(image)}, ...(process.env.BENCH_POOL ? { pool: Number(process.env.BENCH_POOL) } : {}) });`,
      `for (let i = 0; i < ${TESTS}; i++) it('true ' + i, async ({ vm }) => { if ((await vm.exec(['/bin/true'])).exitCode !== 0) throw new Error('true failed'); });`,
    ].join('\n'));
    await writeFile(join(suiteDir, 'one-vm.test.ts'), [
      `import { it } from 'vitest';`,
      `import { describeWithVm } from ${JSON.stringify(fixture)};`,
      `describeWithVm('one VM', { image: ${JSON.stringify(image)} }, (vm) => {`,
      `  for (let i = 0; i < ${TESTS}; i++) it('true ' + i, async () => { if ((await vm().exec(['/bin/true'])).exitCode !== 0) throw new Error('true failed'); });`,
      `});`,
    ].join('\n'));
    const vitest = resolve('node_modules/.bin/vitest');
    const suite = (file: string, pool?: number): Promise<number> => timed(() => execa(vitest, ['run', '--root', suiteDir, file], { env: { ...cliEnv, ...(pool !== undefined ? { BENCH_POOL: String(pool) } : {}) }, cwd: suiteDir }));
    await suite('one-vm.test.ts'); // the snapshot exists from here on (and vitest's caches are warm)
    const oneVm: number[] = [];
    const pooled: number[] = [];
    const unpooled: number[] = [];
    for (let i = 0; i < Math.min(RUNS, 3); i++) {
      oneVm.push(await suite('one-vm.test.ts'));
      pooled.push(await suite('per-test.test.ts'));
      unpooled.push(await suite('per-test.test.ts', 0));
    }
    const perTest = (walls: number[]): number[] => walls.map((w, i) => (w - oneVm[i]!) / TESTS);
    row({ figure: `per-test VM overhead in a vitest suite: ${TESTS} tests × \`true\`, each in its own VM (vmTest, default pool: ${Math.max(1, cpus().length - 1)} ready), minus ${TESTS} execs in one VM (describeWithVm; its suite wall ${stat(oneVm).median.toFixed(0)} ms), per test`, unit: 'ms', value: stat(perTest(pooled)), baselineName: 'the same without the pool (pool: 0)', baseline: stat(perTest(unpooled)) });
  }

  // ---- warm exec, streaming, 9p writes, idle memory ----
  if (wanted('exec')) {
    const vm = await startVm({ image });
    try {
      const execTimes: number[] = [];
      for (let i = 0; i < 200; i++) execTimes.push(await timed(() => vm.exec(['/bin/true'])));
      const hostTimes: number[] = [];
      for (let i = 0; i < 200; i++) hostTimes.push(await timed(() => execa('/bin/true')));
      row({ figure: 'warm exec round trip of `true` (200 runs)', unit: 'ms', value: stat(execTimes, true), baselineName: 'host spawning /bin/true through execa', baseline: stat(hostTimes, true) });

      const size = 256 * 1024 * 1024;
      const streamRates = await repeat(RUNS, async () => {
        const t = performance.now();
        const p = await vm.spawn(`head -c ${size} /dev/zero`, { maxBuffer: 0 });
        const r = await p.wait();
        if (r.stdoutBytes !== size) throw new Error(`stream lost bytes: ${r.stdoutBytes}`);
        return size / 1048576 / ((performance.now() - t) / 1000);
      });
      const hostStream = await repeat(RUNS, async () => size / 1048576 / ((await timed(() => execa('sh', ['-c', `head -c ${size} /dev/zero > /dev/null`]))) / 1000));
      row({ figure: 'stdout streaming from the guest (256 MiB)', unit: 'MB/s', value: stat(streamRates), baselineName: 'host head -c 256M /dev/zero > /dev/null', baseline: stat(hostStream) }, true);
    // busybox `head -c` itself is slow under TCG (small reads and writes): the same stream from
    // a producer with 64 KiB writes, against that producer writing to /dev/null in the guest,
    // shows what the agent channel costs.
    const fast = `dd if=/dev/zero bs=65536 count=${size / 65536} 2>/dev/null`;
    const channelRates = await repeat(RUNS, async () => {
      const t = performance.now();
      const r = await (await vm.spawn(fast, { maxBuffer: 0 })).wait();
      if (r.stdoutBytes !== size) throw new Error(`stream lost bytes: ${r.stdoutBytes}`);
      return size / 1048576 / ((performance.now() - t) / 1000);
    });
    const inGuest = await repeat(RUNS, async () => size / 1048576 / ((await timed(() => vm.exec(`${fast} > /dev/null`))) / 1000));
    row({ figure: 'stdout streaming from the guest, 64 KiB writes (dd, 256 MiB)', unit: 'MB/s', value: stat(channelRates), baselineName: 'the same dd into /dev/null inside the guest', baseline: stat(inGuest) }, true);

      const volume = vm.volumes.find((v) => v.guestPath === '/golem/output')!;
      const guestWrite = await repeat(RUNS, async () => {
        const ms = await timed(() => vm.exec('dd if=/dev/zero of=/golem/output/w bs=1M count=256 2>/dev/null; sync'));
        await vm.exec('rm -f /golem/output/w');
        return 256 / (ms / 1000);
      });
      const hostWrite = await repeat(RUNS, async () => {
        const ms = await timed(() => execa('sh', ['-c', `dd if=/dev/zero of=${volume.hostPath}/h bs=1M count=256 2>/dev/null; sync`]));
        await rm(join(volume.hostPath, 'h'), { force: true });
        return 256 / (ms / 1000);
      });
      row({ figure: 'guest writing 256 MiB into a volume (9p)', unit: 'MB/s', value: stat(guestWrite), baselineName: 'host dd of 256 MiB into the same directory', baseline: stat(hostWrite) }, true);
    } finally {
      await vm.stop();
    }
  }

  // ---- the resident memory of an idle VM, as started by default (restored) and booted ----
  if (wanted('memory')) {
    /** VmRSS (every page mapped, shared page-cache pages of a RAM file included) and Pss (those shared split among their users), MiB, 1 s after the start. */
    const idle = async (snapshot: boolean): Promise<{ rss: number; pss: number }> => {
      const vm = await startVm({ image, snapshot });
      try {
        await vm.exec(['/bin/true']);
        await new Promise((r) => setTimeout(r, 1000));
        const pid = vmInternalsForTests(vm).qemuPid;
        const kb = (text: string, field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(text)?.[1]) / 1024;
        return { rss: kb(await readFile(`/proc/${pid}/status`, 'utf8'), 'VmRSS'), pss: kb(await readFile(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss') };
      } finally {
        await vm.stop();
      }
    };
    await (await startVm({ image })).stop(); // a snapshot to restore
    const restored = await repeat(RUNS, () => idle(true));
    const booted = await repeat(RUNS, () => idle(false));
    row({ figure: 'QEMU resident memory of an idle VM (512 MiB guest, restored: its RAM file mapped copy-on-write), VmRSS', unit: 'MiB', value: stat(restored.map((m) => m.rss)), baselineName: 'the same VM booted (--no-snapshot)', baseline: stat(booted.map((m) => m.rss)) });
    row({ figure: 'the same, proportional set size (pages shared with the page cache and other VMs restored from the state counted by share)', unit: 'MiB', value: stat(restored.map((m) => m.pss)), baselineName: 'booted', baseline: stat(booted.map((m) => m.pss)) });
  }

  // ---- build of the Debian test rootfs vs plain mksquashfs ----
  if (wanted('build')) {
    const tarball = execFileSync('bash', [resolve('examples/seed-debian/make-image.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
    const debRoot = join(work, 'debian');
    await mkdir(debRoot);
    execFileSync('sh', ['-c', `tar -xOf ${tarball} layer/layer.tar | tar -x --numeric-owner -C ${debRoot}`]);
    const ours = await repeat(RUNS, () => timed(() => execa('node', [cli, 'build', debRoot, '-o', join(work, 'd.gvmi'), '--force', '--volume', '/golem/output'])));
    const plain = await repeat(RUNS, () => timed(() => execa('mksquashfs', [debRoot, join(work, 'd.sqfs'), '-noappend', '-comp', 'lzo', '-b', '131072', '-no-progress', '-quiet'])));
    row({ figure: '`gvmi-test build` of the Debian test rootfs (lzo)', unit: 'ms', value: stat(ours), baselineName: 'plain mksquashfs of the same tree, same compression', baseline: stat(plain) });
  }

  // ---- concurrency (cold boots: what a suite pays without snapshots) ----
  for (const n of wanted('concurrency') ? [1, 2, 4, 8] : []) {
    const bootAndRun = async (): Promise<void> => {
      const v = await startVm({ image, bootTimeoutMs: 300_000, snapshot: false });
      await v.exec(['/bin/true']);
      await v.stop();
    };
    const concurrent = await repeat(Math.min(RUNS, 3), () => timed(() => Promise.all(Array.from({ length: n }, bootAndRun))));
    const sequential = await repeat(Math.min(RUNS, 3), () => timed(async () => { for (let i = 0; i < n; i++) await bootAndRun(); }));
    row({ figure: `${n} concurrent VM(s), each booting and running a command: total wall`, unit: 'ms', value: stat(concurrent), baselineName: `1 VM × ${n} sequential`, baseline: stat(sequential) });
  }

  // ---- report ----
  const qemuVersion = execFileSync(qemu, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB`;
  const fmt = (s: Stat | undefined, unit: string): string => (s ? `${s.median.toFixed(unit === 'ms' ? 0 : 1)} ${unit} (${s.min.toFixed(unit === 'ms' ? 0 : 1)}–${s.max.toFixed(unit === 'ms' ? 0 : 1)}${s.p99 !== undefined ? `, p99 ${s.p99.toFixed(1)}` : ''})` : '—');
  const lines = [
    '# gvmi-test benchmark',
    '',
    `Measured by \`make bench\` on ${new Date().toISOString().slice(0, 10)} — machine: ${machine}; accelerator: ${accelerator.reason}; ${qemuVersion}; guest kernel ${runtime.kernelHash}, init ${runtime.initHash}. Median (min–max) over ${RUNS} runs unless said (start-up rows: ${START_RUNS}, floor, cold and restored runs alternating); ratio = figure ÷ baseline for times, baseline ÷ figure for rates (lower is better in both); "paired" = the median of run-by-run ratios of alternating runs, steadier than the ratio of medians on a noisy machine.`,
    '',
    '| figure | value | baseline | baseline value | ratio |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.figure} | ${fmt(r.value, r.unit)} | ${r.baselineName} | ${fmt(r.baseline, r.unit)} | ${r.ratio !== undefined ? `×${r.ratio.toFixed(2)}` : '—'}${r.pairedRatio !== undefined ? ` (paired ×${r.pairedRatio.toFixed(2)})` : ''} |`),
    '',
  ];
  if (only) {
    console.log('BENCH_ONLY set: RESULTS.md and results.json left as they were');
  } else {
    const notes = await readFile(resolve('bench/NOTES.md'), 'utf8').catch(() => '');
    await writeFile(resolve('bench/RESULTS.md'), `${lines.join('\n')}\n${notes}`);
    await writeFile(resolve('bench/results.json'), `${JSON.stringify({ date: new Date().toISOString(), machine, accelerator, qemu: qemuVersion, runtime, runs: RUNS, rows }, null, 2)}\n`);
    console.log('wrote bench/RESULTS.md and bench/results.json');
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
