/**
 * VMs for vitest suites, the way testcontainers gives containers: a `vm` fixture (fresh per test,
 * or one per file with an optional reset between tests) and `describeWithVm` for the common shape.
 */
import { afterAll, beforeAll, beforeEach, describe, test, type TestAPI } from 'vitest';
import { startVm, type StartVmOptions } from '../vm/start-vm.js';
import type { StartedVm } from '../vm/started-vm.js';
import { vmTimeout } from './timeouts.js';

export type VmReset = 'none' | 'volumes' | 'reboot';

export interface VmFixtureOptions extends StartVmOptions {
  /** 'test' (default): a fresh VM for every test. 'file': one VM per test file, reused. */
  scope?: 'test' | 'file';
  /**
   * With scope 'file', before each test but the first: 'none' (default), 'volumes' (kill running
   * processes, empty the volumes) or 'reboot' (a fresh VM). Fresh VMs (this, and scope 'test') are
   * restored from the image's snapshot once one VM has booted, unless `snapshot: false`.
   */
  reset?: VmReset;
}

interface VmHolder {
  current?: StartedVm;
  used: boolean;
}

/** Boot timeout for hooks, scaled to the accelerator (TCG is several times slower than KVM). */
export const BOOT_TIMEOUT_KVM_MS = 20_000;

/**
 * `const it = vmTest({ image: 'my.gvmi' })` then `it('…', async ({ vm }) => { … })`.
 * Give tests room with `{ timeout: vmTimeout(10_000) }` or a scaled testTimeout in the config.
 */
export function vmTest(options: VmFixtureOptions): TestAPI<{ vm: StartedVm }> {
  const { scope = 'test', reset = 'none', ...startOptions } = options;
  if (scope === 'test') {
    return test.extend<{ vm: StartedVm }>({
      // eslint-disable-next-line no-empty-pattern
      vm: async ({}, use) => {
        const vm = await startVm(startOptions);
        try {
          await use(vm);
        } finally {
          await vm.stop();
        }
      },
    });
  }
  const fileScoped = test.extend<{ $test: { vm: StartedVm }; $file: { vmHolder: VmHolder } }>({
    vmHolder: [
      // eslint-disable-next-line no-empty-pattern
      async ({}, use) => {
        const holder: VmHolder = { current: await startVm(startOptions), used: false };
        try {
          await use(holder);
        } finally {
          await holder.current?.stop();
        }
      },
      { scope: 'file' },
    ],
    vm: async ({ vmHolder }, use) => {
      if (vmHolder.used && reset === 'volumes') await vmHolder.current!.reset();
      if (vmHolder.used && reset === 'reboot') {
        await vmHolder.current!.stop();
        vmHolder.current = await startVm(startOptions);
      }
      vmHolder.used = true;
      await use(vmHolder.current!);
    },
  });
  // The holder is an implementation detail: callers see the same API as the per-test form.
  return fileScoped as unknown as TestAPI<{ vm: StartedVm }>;
}

export interface DescribeWithVmOptions extends VmFixtureOptions {
  /** Per-test timeout written for KVM; scaled for TCG (default 10 s). */
  testTimeoutMs?: number;
}

/**
 * `describeWithVm('my image', { image }, (vm) => { it('…', async () => { await vm().exec(…) }) })`:
 * one VM booted before the block's tests and stopped after them.
 */
export function describeWithVm(name: string, options: DescribeWithVmOptions, body: (vm: () => StartedVm) => void): void {
  const { testTimeoutMs = 10_000, reset = 'none', scope: _scope, ...startOptions } = options;
  describe(name, { timeout: vmTimeout(testTimeoutMs) }, () => {
    let vm: StartedVm | undefined;
    let used = false;
    beforeAll(async () => {
      vm = await startVm(startOptions);
    }, vmTimeout(BOOT_TIMEOUT_KVM_MS));
    afterAll(async () => {
      await vm?.stop();
    }, vmTimeout(BOOT_TIMEOUT_KVM_MS));
    if (reset !== 'none') {
      beforeEach(async () => {
        if (used && vm) {
          if (reset === 'volumes') await vm.reset();
          else {
            await vm.stop();
            vm = await startVm(startOptions);
          }
        }
        used = true;
      }, vmTimeout(BOOT_TIMEOUT_KVM_MS));
    }
    body(() => {
      if (!vm) throw new Error('the VM is not started (describeWithVm: use vm() inside tests or hooks)');
      return vm;
    });
  });
}
