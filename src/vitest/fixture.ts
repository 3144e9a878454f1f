/**
 * VMs for vitest suites, the way testcontainers gives containers: a `vm` fixture (fresh per test,
 * or one per file with an optional reset between tests) and `describeWithVm` for the common shape.
 * The VM is started here from an image (`image`, any startVm option; `runtimeVersion` defaults to
 * GVMI_TEST_RUNTIME_VERSION, else 0.4), or is one served by `gvmi-test serve` that the tests
 * connect to (`connect: url`, e.g. booted once in a globalSetup and shared by every worker).
 * forEachRuntime (runtimes.ts) runs a block under every runtime.
 */
import { afterAll, beforeAll, beforeEach, describe, test, type TestAPI } from 'vitest';
import { GvmiTestError } from '../errors.js';
import { connectVm, type RemoteVm } from '../server/ws-client.js';
import { startVm, type StartVmOptions } from '../vm/start-vm.js';
import type { StartedVm } from '../vm/started-vm.js';
import type { VmLike } from '../vm/vm-like.js';
import { defaultPoolSize, VmPool } from '../vm/vm-pool.js';
import { runtimeProfileOrEnv } from '../vm/runtime-env.js';
import { vmTimeout } from './timeouts.js';

/**
 * Between the tests sharing a VM: 'none'; 'processes' (kill the running ones); 'volumes' (that,
 * and empty the volumes: a VM started here only); 'reboot' (a fresh VM: one started here only).
 */
export type VmReset = 'none' | 'processes' | 'volumes' | 'reboot';

export interface VmFixtureOptions extends StartVmOptions {
  /**
   * 'test' (default): a fresh VM for every test. 'file': one VM for the tests of the suite
   * vmTest() is called in (the file, or a describe block such as forEachRuntime's), reused.
   */
  scope?: 'test' | 'file';
  /**
   * With scope 'test': how many VMs to keep started ahead (restored from the snapshot while the
   * current test runs), so that a test does not wait for its VM's start. Each is exactly what a
   * start with these options gives (nothing of the image has run, fresh volumes), handed out once.
   * Default GVMI_TEST_POOL, else the host's cores but one (at least 1); 0 (no VM ahead) when
   * snapshots are off. Started VMs are ended when the suite ends.
   */
  pool?: number;
  /**
   * With scope 'file', before each test but the first (default 'none'). Fresh VMs ('reboot', and
   * scope 'test') are restored from the image's snapshot once one VM has booted, unless
   * `snapshot: false`.
   */
  reset?: VmReset;
}

export interface RemoteVmFixtureOptions {
  /** The URL `gvmi-test serve` printed (or a function giving it, asked when the first test runs): the tests connect to that VM (connectVm). */
  connect: string | (() => string);
  /** 'test' (default): a connection per test. 'file': one per suite, reused. */
  scope?: 'test' | 'file';
  /** A served VM is shared: its volumes are not this suite's to empty, nor its life to end. */
  reset?: 'none' | 'processes';
}

/** Boot timeout for hooks, scaled to the accelerator (TCG is several times slower than KVM). */
export const BOOT_TIMEOUT_KVM_MS = 20_000;

/** How the fixture gets, resets and ends a VM of one kind. */
interface VmSource<V extends VmLike> {
  open(): Promise<V>;
  /** The VM to use after `how` (a new one after a reboot). */
  reset(vm: V, how: VmReset): Promise<V>;
  /** Done with it: a VM started here is stopped, a connection closed (the served VM runs on). */
  end(vm: V): Promise<void>;
}

/** The options a VM is started with here: the runtime named, else GVMI_TEST_RUNTIME_VERSION's (checked now, at collection). */
function fixtureStartOptions(options: StartVmOptions): StartVmOptions {
  return { ...options, runtimeVersion: runtimeProfileOrEnv(options.runtimeVersion) };
}

function localSource(options: StartVmOptions): VmSource<StartedVm> {
  const startOptions = fixtureStartOptions(options);
  return {
    open: () => startVm(startOptions),
    reset: async (vm, how) => {
      if (how === 'processes') await vm.killProcesses();
      else if (how === 'volumes') await vm.reset();
      else if (how === 'reboot') {
        await vm.stop();
        return startVm(startOptions);
      }
      return vm;
    },
    end: (vm) => vm.stop(),
  };
}

function remoteSource(url: string | (() => string)): VmSource<RemoteVm> {
  return {
    open: () => connectVm(typeof url === 'string' ? url : url()),
    reset: async (vm, how) => {
      if (how === 'processes') await vm.killProcesses();
      else if (how !== 'none') throw new GvmiTestError('usage', `reset '${how}' needs a VM started by the fixture; a served VM can only have its processes killed (reset: 'processes')`);
      return vm;
    },
    end: (vm) => vm.disconnect(),
  };
}

/**
 * Fresh VMs for scope 'test' from a pool (vm-pool.ts), ended when the suite vmTest() is called in
 * ends. A used VM's stop finishes in the background while the next test runs; the suite's end
 * waits for it.
 */
function pooledSource(options: StartVmOptions, ready: number): VmSource<StartedVm> {
  const startOptions = fixtureStartOptions(options);
  const pool = new VmPool<StartedVm>({
    ready,
    // The pool's signal ends a VM started ahead that no test took; the caller's still applies.
    start: (signal) => startVm({ ...startOptions, signal: options.signal ? AbortSignal.any([options.signal, signal]) : signal }),
  });
  afterAll(() => pool.close(), vmTimeout(BOOT_TIMEOUT_KVM_MS));
  return {
    open: () => pool.acquire(),
    reset: () => { throw new Error('a per-test VM is never reset'); },
    end: async (vm) => { pool.release(vm); },
  };
}

/** `forVmTest`: vmTest's per-test VMs come from a pool; describeWithVm's one VM does not. */
function sourceOf(options: VmFixtureOptions | RemoteVmFixtureOptions, forVmTest = false): { source: VmSource<VmLike>; scope: 'test' | 'file'; reset: VmReset } {
  if ('connect' in options) {
    const { connect, scope = 'test', reset = 'none' } = options;
    return { source: remoteSource(connect) as VmSource<VmLike>, scope, reset };
  }
  const { scope = 'test', reset = 'none', pool, ...rest } = options;
  const source = forVmTest && scope === 'test' ? pooledSource(rest, pool ?? defaultPoolSize(rest.snapshot)) : localSource(rest);
  return { source: source as VmSource<VmLike>, scope, reset };
}

/**
 * `const it = vmTest({ image: 'my.gvmi' })` then `it('…', async ({ vm }) => { … })`; or
 * `vmTest({ connect: url })` for a served VM. Give tests room with `{ timeout: vmTimeout(10_000) }`
 * or a scaled testTimeout in the config.
 */
export function vmTest(options: VmFixtureOptions): TestAPI<{ vm: StartedVm }>;
export function vmTest(options: RemoteVmFixtureOptions): TestAPI<{ vm: RemoteVm }>;
export function vmTest(options: VmFixtureOptions | RemoteVmFixtureOptions): unknown {
  const { source, scope, reset } = sourceOf(options, true);
  if (scope === 'test') {
    return test.extend<{ vm: VmLike }>({
      // eslint-disable-next-line no-empty-pattern
      vm: async ({}, use) => {
        const vm = await source.open();
        try {
          await use(vm);
        } finally {
          await source.end(vm);
        }
      },
    });
  }
  // One VM per vmTest() call, ended after the suite the call is in (the file, or the describe
  // block of forEachRuntime). Not a vitest file-scoped fixture: vitest refuses those inside a
  // describe block (FixtureDependencyError), and one suite per runtime is exactly that.
  let current: Promise<VmLike> | undefined;
  let used = false;
  afterAll(async () => {
    const vm = current;
    current = undefined;
    used = false;
    const ended = await vm?.catch(() => undefined);
    if (ended) await source.end(ended);
  }, vmTimeout(BOOT_TIMEOUT_KVM_MS));
  return test.extend<{ vm: VmLike }>({
    // eslint-disable-next-line no-empty-pattern
    vm: async ({}, use) => {
      if (!current) current = source.open();
      else if (used && reset !== 'none') {
        const previous = current;
        current = previous.then((vm) => source.reset(vm, reset));
      }
      used = true;
      await use(await current);
    },
  });
}

export type DescribeWithVmOptions = VmFixtureOptions & {
  /** Per-test timeout written for KVM; scaled for TCG (default 10 s). */
  testTimeoutMs?: number;
};

export type DescribeWithRemoteVmOptions = RemoteVmFixtureOptions & {
  /** Per-test timeout written for KVM; scaled for TCG (default 10 s). */
  testTimeoutMs?: number;
};

/**
 * `describeWithVm('my image', { image }, (vm) => { it('…', async () => { await vm().exec(…) }) })`:
 * one VM booted (or, with `connect`, one connection made) before the block's tests and ended
 * after them.
 */
export function describeWithVm(name: string, options: DescribeWithVmOptions, body: (vm: () => StartedVm) => void): void;
export function describeWithVm(name: string, options: DescribeWithRemoteVmOptions, body: (vm: () => RemoteVm) => void): void;
export function describeWithVm(name: string, options: DescribeWithVmOptions | DescribeWithRemoteVmOptions, body: (vm: () => StartedVm & RemoteVm) => void): void {
  const { testTimeoutMs = 10_000, ...rest } = options;
  const { source, reset } = sourceOf(rest);
  describe(name, { timeout: vmTimeout(testTimeoutMs) }, () => {
    let vm: VmLike | undefined;
    let used = false;
    beforeAll(async () => {
      vm = await source.open();
    }, vmTimeout(BOOT_TIMEOUT_KVM_MS));
    afterAll(async () => {
      if (vm) await source.end(vm);
    }, vmTimeout(BOOT_TIMEOUT_KVM_MS));
    if (reset !== 'none') {
      beforeEach(async () => {
        if (used && vm) vm = await source.reset(vm, reset);
        used = true;
      }, vmTimeout(BOOT_TIMEOUT_KVM_MS));
    }
    body(() => {
      if (!vm) throw new Error('the VM is not started (describeWithVm: use vm() inside tests or hooks)');
      // The kind the options asked for (the overloads say which).
      return vm as StartedVm & RemoteVm;
    });
  });
}
