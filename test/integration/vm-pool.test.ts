/**
 * The per-test VMs of vmTest come from a pool of VMs restored ahead (src/vm/vm-pool.ts), with real
 * QEMU: each test gets a VM of its own that is exactly a fresh start (restored from the snapshot,
 * its first process the test's, fresh volumes and overlay, nothing left by the previous test), and
 * when the suite ends no QEMU is left, neither the used VMs (stopped in the background) nor the
 * one started ahead that no test took.
 */
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVm } from '../../src/index.js';
import { vmInternalsForTests } from '../../src/vm/started-vm.js';
import { VmPool } from '../../src/vm/vm-pool.js';
import { vmTest } from '../../src/vitest/fixture.js';

const image = inject('tinyImage');
// A snapshot directory of this file's own, set at collection: the pool reads it when it starts VMs.
const snapshots = await mkdtemp(join(tmpdir(), 'gvmi-pool-test-'));
const savedSnapshotDir = process.env['GVMI_TEST_SNAPSHOT_DIR'];
process.env['GVMI_TEST_SNAPSHOT_DIR'] = snapshots;

/** QEMU processes this process spawned and that still run. */
async function ourQemus(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const afterName = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    if (stat.includes('(qemu-system') && afterName[0] !== 'Z' && Number(afterName[1]) === process.pid) pids.push(Number(entry));
  }
  return pids;
}

interface Seen { qemuPid: number | undefined; outputDir: string }
const seen: Seen[] = [];

beforeAll(async () => {
  // The snapshot is saved first, so every VM of the suite is a restored one.
  const vm = await startVm({ image });
  await vm.stop();
  expect(vm.info.snapshot.use).toBe('saved');
});

afterAll(async () => {
  // The suite's pool was closed by its block's afterAll, which runs before this one.
  expect(seen).toHaveLength(3);
  expect(await ourQemus()).toEqual([]);
  if (savedSnapshotDir === undefined) delete process.env['GVMI_TEST_SNAPSHOT_DIR'];
  else process.env['GVMI_TEST_SNAPSHOT_DIR'] = savedSnapshotDir;
  await rm(snapshots, { recursive: true, force: true });
});

describe('vmTest with scope test (the default): VMs from the pool', () => {
  const test = vmTest({ image, pool: 1 });
  for (const n of [1, 2, 3]) {
    test(`test ${n} gets a fresh restored VM of its own`, async ({ vm }) => {
      expect(vm.info.snapshot.use).toBe('restored');
      // The test's command is the VM's first process: nothing ran in it while it waited.
      const first = await vm.spawn(['/bin/busybox', 'ls', '-A', '/golem/output', '/']);
      expect(first.id).toBe(1n);
      const listing = (await first.wait()).stdout;
      expect(listing).not.toContain('left-by-test');
      await vm.exec('echo x > /golem/output/left-by-test; echo x > /left-by-test');
      const output = vm.volumes.find((v) => v.guestPath === '/golem/output')!.hostPath;
      const mine: Seen = { qemuPid: vmInternalsForTests(vm).qemuPid, outputDir: output };
      for (const earlier of seen) {
        expect(mine.qemuPid).not.toBe(earlier.qemuPid);
        expect(mine.outputDir).not.toBe(earlier.outputDir);
      }
      seen.push(mine);
    });
  }
});

describe('VmPool', () => {
  it('close() ends the VMs started ahead, a start under way included, and waits for released ones', async () => {
    const pool = new VmPool({ ready: 2, start: (signal) => startVm({ image, signal }) });
    const vm = await pool.acquire();
    expect(pool.readyCount).toBe(2);
    expect((await vm.exec(['/bin/true'])).exitCode).toBe(0);
    pool.release(vm);
    await pool.close();
    expect(vm.stopped).toBe(true);
    expect(await ourQemus()).toEqual([]);
    await expect(pool.acquire()).rejects.toMatchObject({ code: 'usage' });
  });

  it('keeps nothing ahead before a first start has succeeded (the first may boot and save)', async () => {
    let starts = 0;
    const pool = new VmPool({ ready: 3, start: async () => { starts++; throw new Error('no VM'); } });
    await expect(pool.acquire()).rejects.toThrow('no VM');
    expect(pool.readyCount).toBe(0);
    expect(starts).toBe(1);
    await pool.close();
  });
});
