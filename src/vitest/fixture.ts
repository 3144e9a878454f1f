/**
 * VMs for vitest suites, the way testcontainers gives containers: a `vm` fixture (fresh per test,
 * or one per file with an optional reset between tests) and `describeWithVm` for the common shape.
 * Both take `runtimeVersion` (default: GVMI_TEST_RUNTIME_VERSION, else 0.4); forEachRuntime
 * (runtimes.ts) runs a block under every runtime.
 */
import { afterAll, beforeAll, beforeEach, describe, test, type TestAPI } from 'vitest';
import { startVm, type StartVmOptions } from '../vm/start-vm.js';
import type { StartedVm } from '../vm/started-vm.js';
import { runtimeProfileOrEnv } from '../vm/runtime-env.js';
import { vmTimeout } from './timeouts.js';

export type VmReset = 'none' | 'volumes' | 'reboot';

export interface VmFixtureOptions extends StartVmOptions {
  /**
   * 'test' (default): a fresh VM for every test. 'file': one VM for the tests of the suite
   * vmTest() is called in (the file, or a describe block such as forEachRuntime's), reused.
   */
  scope?: 'test' | 'file';
  /**
   * With scope 'file', before each test but the first: 'none' (default), 'volumes' (kill running
   * processes, empty the volumes) or 'reboot' (a fresh VM). Fresh VMs (this, and scope 'test') are
   * restored from the image's snapshot once one VM has booted, unless `snapshot: false`.
   */
  reset?: VmReset;
}

/** Boot timeout for hooks, scaled to the accelerator (TCG is several times slower than KVM). */
export const BOOT_TIMEOUT_KVM_MS = 20_000;

/** The options startVm gets: the runtime named, else GVMI_TEST_RUNTIME_VERSION's (checked now, at collection). */
function withRuntime(options: StartVmOptions): StartVmOptions {
  return { ...options, runtimeVersion: runtimeProfileOrEnv(options.runtimeVersion) };
}

/**
 * `const it = vmTest({ image: 'my.gvmi' })` then `it('…', async ({ vm }) => { … })`.
 * Give tests room with `{ timeout: vmTimeout(10_000) }` or a scaled testTimeout in the config.
 */
export function vmTest(options: VmFixtureOptions): TestAPI<{ vm: StartedVm }> {
  const { scope = 'test', reset = 'none', ...rest } = options;
  const startOptions = withRuntime(rest);
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
  // One VM per vmTest() call, stopped after the suite the call is in (the file, or the describe
  // block of forEachRuntime). Not a vitest file-scoped fixture: vitest refuses those inside a
  // describe block (FixtureDependencyError), and one suite per runtime is exactly that.
  let current: Promise<StartedVm> | undefined;
  let used = false;
  afterAll(async () => {
    const vm = current;
    current = undefined;
    used = false;
    await (await vm?.catch(() => undefined))?.stop();
  }, vmTimeout(BOOT_TIMEOUT_KVM_MS));
  return test.extend<{ vm: StartedVm }>({
    // eslint-disable-next-line no-empty-pattern
    vm: async ({}, use) => {
      if (!current) current = startVm(startOptions);
      else if (used && reset === 'volumes') await (await current).reset();
      else if (used && reset === 'reboot') {
        const previous = current;
        current = (async () => {
          await (await previous).stop();
          return startVm(startOptions);
        })();
      }
      used = true;
      await use(await current);
    },
  });
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
  const { testTimeoutMs = 10_000, reset = 'none', scope: _scope, ...rest } = options;
  const startOptions = withRuntime(rest);
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
