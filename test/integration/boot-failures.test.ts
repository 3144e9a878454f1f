/**
 * When the VM can't boot or dies, the error says why (and nothing is left running).
 */
import { chmod, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVm } from '../../src/index.js';
import { failure } from '../helpers/failure.js';
import { minimalRootfs, rawGvmi } from '../helpers/raw-gvmi.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-bootfail-'));
});

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});


describe('boot failures name their cause', () => {
  it('an image without /etc fails as on a provider, and the error says to add /etc', async () => {
    // made without Docker's init layer (gvmi-test build would add /etc), with /proc and /sys, which
    // a provider's init needs before it gets to /etc
    const rootfs = await minimalRootfs(join(dir, 'no-etc'), ['proc', 'sys']);
    const image = await rawGvmi(rootfs, join(dir, 'no-etc.gvmi'), { volumes: ['/out'] });
    const privateTmp = await mkdtemp(join(tmpdir(), 'gvmi-rollback-'));
    await chmod(privateTmp, 0o711);
    process.env['TMPDIR'] = privateTmp;
    const e = await failure(startVm({ image }));
    // the failed start rolled back: QEMU gone, temporary directories removed
    expect(await readdir(privateTmp)).toEqual([]);
    expect(e.code).toBe('vm.boot-failed');
    // upstream appends to /etc/hosts first (init.c setup_network), so that is where it stops
    expect(e.details?.['initFailure']).toMatchObject({ step: 'hosts', errno: 2 });
    expect(e.hint).toMatch(/no \/etc directory/);
    expect(String(e.details?.['consoleTail'])).toContain('GVMI-INIT-FATAL hosts 2');
  });

  it('a missing runtime says which make target builds it', async () => {
    process.env['GVMI_TEST_RUNTIME'] = join(dir, 'nope.json');
    const e = await failure(startVm({ image: inject('tinyImage') }));
    expect(e.code).toBe('setup.runtime-missing');
    expect(e.hint).toContain('make runtime');
  });

  it('a missing QEMU is setup.qemu-missing', async () => {
    process.env['GVMI_TEST_QEMU'] = join(dir, 'no-qemu');
    expect((await failure(startVm({ image: inject('tinyImage') }))).code).toBe('setup.qemu-missing');
  });
});

describe('a guest that dies', () => {
  it('a kernel panic rejects pending calls with vm.crashed and the console tail', async () => {
    const vm = await startVm({ image: inject('tinyImage') });
    try {
      const sleeper = failure(vm.exec('sleep 30'));
      const e = await failure(vm.exec('echo c > /proc/sysrq-trigger'));
      expect(e.code).toBe('vm.crashed');
      expect(String(e.details?.['consoleTail'] ?? e.message)).toMatch(/sysrq|Kernel panic/i);
      expect((await sleeper).code).toBe('vm.crashed');
      expect((await failure(vm.exec('true'))).code).toBe('vm.crashed');
    } finally {
      await vm.stop();
    }
  });
});
