/**
 * Snapshot fast start with real QEMU: the first start boots and saves the VM state (before any
 * volume is mounted), later starts restore it. A restored VM must be indistinguishable from a
 * booted one (provider conditions, volumes, shadowing), must not share clock or randomness with
 * its snapshot, and a snapshot must never be restored over a different image or configuration.
 */
import { execFile } from 'node:child_process';
import { copyFile, cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { startVm, type StartedVm } from '../../src/index.js';
import { buildImage } from '../../src/image/build-image.js';
import { TINY_IMAGE_SETTINGS } from '../helpers/busybox-rootfs.js';

const run = promisify(execFile);
/** How far a restored guest's clock may be from the host's (it is set to within 2 ms). */
const CLOCK_TOLERANCE_MS = 5;
const CLI = resolve('dist/cli/main.js');

let work: string;
let image: string;
let snapshots: string;
const savedEnv = process.env['GVMI_TEST_SNAPSHOT_DIR'];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gvmi-snapshot-test-'));
  image = join(work, 'tiny.gvmi');
  await copyFile(inject('tinyImage'), image);
});

beforeEach(async () => {
  // Each test starts with no snapshot saved, in a directory of its own.
  snapshots = await mkdtemp(join(work, 'snapshots-'));
  process.env['GVMI_TEST_SNAPSHOT_DIR'] = snapshots;
});

afterAll(async () => {
  if (savedEnv === undefined) delete process.env['GVMI_TEST_SNAPSHOT_DIR'];
  else process.env['GVMI_TEST_SNAPSHOT_DIR'] = savedEnv;
  await rm(work, { recursive: true, force: true });
});

async function stateFiles(): Promise<string[]> {
  return (await readdir(snapshots)).filter((n) => n.endsWith('.state'));
}

async function withVm<T>(options: Parameters<typeof startVm>[0], body: (vm: StartedVm) => Promise<T>): Promise<T> {
  const vm = await startVm(options);
  try {
    return await body(vm);
  } finally {
    await vm.stop();
  }
}

describe('snapshot fast start', () => {
  it('the first start boots and saves a state; the next one restores it', async () => {
    const first = await withVm({ image }, async (vm) => vm.info.snapshot);
    expect(first.use).toBe('saved');
    if (first.use !== 'saved') return;
    expect(first.bytes).toBeGreaterThan(1024 * 1024);
    const files = await stateFiles();
    expect(files).toEqual([`${first.key}.state`]);
    // Two files: the devices' state (small), and the guest's RAM, named after the state's inode:
    // a sparse file as long as the guest's memory, holding only what the guest wrote.
    const state = await stat(join(snapshots, files[0]!));
    const ram = await stat(join(snapshots, `${first.key}.${state.ino}.ram`));
    expect(state.size).toBeLessThan(1024 * 1024);
    expect(ram.size).toBe(512 * 1024 * 1024);
    expect(ram.blocks * 512).toBeLessThan(ram.size / 4);
    expect(state.size + Math.min(ram.size, ram.blocks * 512)).toBe(first.bytes);
    expect((await readdir(snapshots)).sort()).toEqual([`${first.key}.${state.ino}.ram`, `${first.key}.json`, `${first.key}.state`]);
    const second = await withVm({ image }, async (vm) => {
      expect((await vm.exec(['/bin/true'])).exitCode).toBe(0);
      return vm.info.snapshot;
    });
    expect(second).toEqual({ use: 'restored', key: first.key });
  });

  it('a restored VM keeps the provider conditions: overlay size, hostname, shadowing, volumes both ways', async () => {
    await withVm({ image }, async () => {}); // saves
    const input = await mkdtemp(join(tmpdir(), 'gvmi-snapshot-input-'));
    await writeFile(join(input, 'from-host.txt'), 'sent in\n');
    await withVm({ image, volumes: { '/golem/input': input } }, async (vm) => {
      expect(vm.info.snapshot.use).toBe('restored');
      const r = await vm.exec('df -k / | tail -1; hostname; ls -A /golem/input; cat /golem/input/from-host.txt; echo out > /golem/output/result.txt; grep -c " 9p " /proc/mounts');
      const lines = r.stdout.trim().split('\n');
      expect(Number(lines[0]!.trim().split(/\s+/)[1])).toBe(128 * 1024);
      expect(lines.slice(1)).toEqual(['(none)', 'from-host.txt', 'sent in', '2']); // runtime 0.4: no hostname
      expect(vm.info.shadowed).toEqual(['/golem/input/baked.txt']);
      const output = vm.volumes.find((v) => v.guestPath === '/golem/output')!;
      expect(await readFile(join(output.hostPath, 'result.txt'), 'utf8')).toBe('out\n');
      // The overlay's upper layer is the snapshot's: empty, so all 128 MB are there to use.
      expect((await vm.exec('dd if=/dev/zero of=/big bs=1M count=100 2>&1 && echo ok')).stdout).toMatch(/ok\n$/);
    });
    await rm(input, { recursive: true, force: true });
  });

  it("nothing of the image runs before the user's first command: a hostile /bin/sh leaves nothing in the snapshot", async () => {
    // This /bin/sh plants a marker and a detached daemon whenever it runs. Run before the state is
    // saved, both would live on in every restored VM before the user's command.
    const rootfs = join(work, 'rootfs-hostile-sh');
    await cp(inject('tinyRootfs'), rootfs, { recursive: true, verbatimSymlinks: true });
    await rm(join(rootfs, 'bin/sh'));
    await writeFile(join(rootfs, 'bin/sh'), '#!/bin/busybox ash\n/bin/busybox touch /ran-before-user\n/bin/busybox setsid /bin/busybox sleep 1000 &\nexec /bin/busybox ash "$@"\n', { mode: 0o755 });
    const hostile = join(work, 'hostile-sh.gvmi');
    await buildImage({ source: rootfs, output: hostile, ...TINY_IMAGE_SETTINGS });
    await withVm({ image: hostile }, async (vm) => expect(vm.info.snapshot.use).toBe('saved'));
    await withVm({ image: hostile }, async (vm) => {
      expect(vm.info.snapshot.use).toBe('restored');
      const first = await vm.spawn(['/bin/busybox', 'ls', '/']);
      expect(first.id).toBe(1n); // the user's command is the first process, as on a provider
      expect((await first.wait()).stdout).not.toContain('ran-before-user');
      expect((await vm.exec(['/bin/busybox', 'ps', '-o', 'args'])).stdout).not.toMatch(/sleep 1000/);
    });
    // An image without /bin/sh snapshots too.
    const noShellRootfs = join(work, 'rootfs-no-sh');
    await cp(inject('tinyRootfs'), noShellRootfs, { recursive: true, verbatimSymlinks: true });
    await rm(join(noShellRootfs, 'bin/sh'));
    const noShell = join(work, 'no-sh.gvmi');
    await buildImage({ source: noShellRootfs, output: noShell, ...TINY_IMAGE_SETTINGS });
    await withVm({ image: noShell }, async (vm) => expect(vm.info.snapshot.use).toBe('saved'));
    await withVm({ image: noShell }, async (vm) => {
      expect(vm.info.snapshot.use).toBe('restored');
      expect((await vm.exec(['/bin/busybox', 'echo', 'no shell needed'])).stdout).toBe('no shell needed\n');
    });
  });

  it("a restored VM takes the host's clock, not the snapshot's: within a few ms, whatever the load", async () => {
    await withVm({ image }, async () => {});
    // Without the refresh, the guest clock would resume where the snapshot stopped: 4 s behind.
    await new Promise((r) => setTimeout(r, 4000));
    await withVm({ image }, async (vm) => {
      expect(vm.info.snapshot.use).toBe('restored');
      // Not jiffies, which step by 10 ms and lose every tick a busy host delays (under TCG the
      // guest is told the host's TSC rate; under KVM it has kvm-clock).
      const clocksource = await vm.exec('cat /sys/devices/system/clocksource/clocksource0/current_clocksource');
      expect(clocksource.stdout.trim()).toMatch(/^(tsc|tsc-early|kvm-clock)$/);
      for (let i = 0; i < 3; i++) {
        // The guest reads its clock inside one exec: between the host's readings before and after
        // it, however long the exec takes on a loaded host. Only the clocks' offset is bounded.
        const before = Date.now();
        const { stdout } = await vm.exec(['/bin/busybox', 'adjtimex']); // to the µs: busybox date has no %N
        const after = Date.now() + 1; // Date.now() drops the fraction of a ms
        const time = /status:\s+(\d+)[\s\S]*time\.tv_sec:\s+(\d+)\s+time\.tv_usec:\s+(\d+)/.exec(stdout);
        expect(time, stdout).not.toBeNull();
        const [, status, sec, usec] = time!.map(Number) as [number, number, number, number];
        // Set without touching the guest's NTP state: still in µs (no STA_NANO), as after a boot.
        expect(status & 0x2000).toBe(0);
        const guestMs = sec * 1000 + usec / 1000;
        expect(guestMs, `guest ${guestMs} ms, host [${before}, ${after}]`).toBeGreaterThanOrEqual(before - CLOCK_TOLERANCE_MS);
        expect(guestMs, `guest ${guestMs} ms, host [${before}, ${after}]`).toBeLessThanOrEqual(after + CLOCK_TOLERANCE_MS);
        await new Promise((r) => setTimeout(r, 1000));
      }
    });
  });

  it('VMs restored from one snapshot do not share their random numbers', async () => {
    await withVm({ image }, async () => {});
    const draw = (): Promise<string> => withVm({ image }, async (vm) => {
      expect(vm.info.snapshot.use).toBe('restored');
      // The agent logs only once the generator was reseeded and the clock set.
      expect(await vm.console()).toContain('gvmi-init: resumed from a snapshot: clock set, random generator reseeded');
      // boot_id too: the kernel makes it at its first read, which comes after the restore.
      return (await vm.exec('head -c 32 /dev/urandom | od -An -tx1; cat /proc/sys/kernel/random/boot_id')).stdout;
    });
    const a = await draw();
    const b = await draw();
    expect(a).toMatch(/[0-9a-f]{2}/);
    const [randomA, bootIdA] = [a.slice(0, a.lastIndexOf('\n', a.length - 2)), a.trim().split('\n').pop()];
    const [randomB, bootIdB] = [b.slice(0, b.lastIndexOf('\n', b.length - 2)), b.trim().split('\n').pop()];
    expect(randomA).not.toBe(randomB);
    expect(bootIdA).toMatch(/^[0-9a-f-]{36}$/);
    expect(bootIdA).not.toBe(bootIdB);
  });

  it('snapshot: false neither restores nor saves', async () => {
    await withVm({ image, snapshot: false }, async (vm) => expect(vm.info.snapshot).toEqual({ use: 'off' }));
    expect(await stateFiles()).toEqual([]);
  });

  it('another memory size or another image at the same path never restores the old state', async () => {
    const base = await withVm({ image }, async (vm) => vm.info.snapshot);
    const bigger = await withVm({ image, memory: 384 }, async (vm) => vm.info.snapshot);
    expect(bigger.use).toBe('saved');
    expect((bigger as { key: string }).key).not.toBe((base as { key: string }).key);

    // Rebuild the image with one more file and write it over the same path.
    const rootfs = join(work, 'rootfs-changed');
    await cp(inject('tinyRootfs'), rootfs, { recursive: true, verbatimSymlinks: true });
    await writeFile(join(rootfs, 'golem/resources/new.txt'), 'only in the new image\n');
    const changed = join(work, 'changed.gvmi');
    await buildImage({ source: rootfs, output: changed, ...TINY_IMAGE_SETTINGS });
    const copy = join(work, 'same-path.gvmi');
    await copyFile(image, copy);
    await withVm({ image: copy }, async (vm) => expect(vm.info.snapshot.use).toBe('restored'));
    await copyFile(changed, copy);
    await withVm({ image: copy }, async (vm) => {
      expect(vm.info.snapshot.use).toBe('saved');
      expect((await vm.exec('cat /golem/resources/new.txt')).stdout).toBe('only in the new image\n');
    });
  });

  it('a corrupt snapshot is dropped: the VM boots, works, and saves a good one', async () => {
    const saved = await withVm({ image }, async (vm) => vm.info.snapshot);
    const state = join(snapshots, `${(saved as { key: string }).key}.state`);
    const bytes = await readFile(state);
    bytes.fill(0x5a, 64, 4096); // garbage right after the header
    await writeFile(state, bytes);
    await withVm({ image }, async (vm) => {
      expect(vm.info.snapshot.use).toBe('saved');
      expect(vm.info.snapshot).toHaveProperty('replaced');
      expect((await vm.exec('echo fine')).stdout).toBe('fine\n');
    });
    await withVm({ image }, async (vm) => expect(vm.info.snapshot.use).toBe('restored'));
  });

  it('when the state cannot be saved, the VM runs on and says why', async () => {
    const notADirectory = join(work, 'a-file');
    await writeFile(notADirectory, '');
    process.env['GVMI_TEST_SNAPSHOT_DIR'] = join(notADirectory, 'snapshots');
    await withVm({ image }, async (vm) => {
      expect(vm.info.snapshot.use).toBe('failed');
      expect(vm.info.snapshot).toHaveProperty('reason', expect.stringMatching(/ENOTDIR|not a directory/));
      expect((await vm.exec('echo still here')).stdout).toBe('still here\n');
    });
  });

  it('a save cut short by its deadline is cancelled, and the VM runs on (not left paused)', async () => {
    // A save takes ~10-30 ms now (the RAM is copied as a file): a deadline of 1 ms is always missed.
    process.env['GVMI_TEST_SNAPSHOT_SAVE_TIMEOUT_MS'] = '1';
    try {
      await withVm({ image }, async (vm) => {
        expect(vm.info.snapshot).toMatchObject({ use: 'failed', reason: expect.stringContaining('took over 1 ms') });
        expect((await vm.exec('echo running')).stdout).toBe('running\n');
        expect((await vm.exec('date +%s')).exitCode).toBe(0);
      });
    } finally {
      delete process.env['GVMI_TEST_SNAPSHOT_SAVE_TIMEOUT_MS'];
    }
    expect(await readdir(snapshots)).toEqual([]);
  });

  it('the CLI restores by default and boots with --no-snapshot', async () => {
    const env = { ...process.env, GVMI_TEST_SNAPSHOT_DIR: snapshots };
    const once = async (...flags: string[]): Promise<{ snapshot: string; stdout: string }> => {
      const { stdout } = await run('node', [CLI, 'run', '--json', ...flags, image, '--', '/bin/echo', 'hi'], { env });
      return JSON.parse(stdout) as { snapshot: string; stdout: string };
    };
    expect(await once('--no-snapshot')).toMatchObject({ snapshot: 'off', stdout: 'hi\n' });
    expect(await stateFiles()).toEqual([]);
    expect(await once()).toMatchObject({ snapshot: 'saved', stdout: 'hi\n' });
    expect(await once()).toMatchObject({ snapshot: 'restored', stdout: 'hi\n' });
    const { stdout } = await run('node', [CLI, 'run', '--json', image, '--', '/bin/true'], { env: { ...env, GVMI_TEST_SNAPSHOT: '0' } });
    expect(JSON.parse(stdout)).toMatchObject({ snapshot: 'off' });
    // doctor tells where they are and how many
    const doctor = JSON.parse((await run('node', [CLI, 'doctor', '--json'], { env })).stdout) as { checks: { name: string; detail: string }[] };
    expect(doctor.checks.find((c) => c.name === 'snapshots')?.detail).toMatch(new RegExp(`^on: 1 saved, \\d+ MiB in ${snapshots}`));
  });
});
