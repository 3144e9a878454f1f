/**
 * forEachRuntime and the fixtures' runtimeVersion, with startVm replaced by a fake: which VM each
 * block gets, and when it is stopped. (The real thing boots in test/integration/runtime-profiles.)
 */
import { afterAll, describe, expect, it, vi } from 'vitest';

interface FakeVm { runtimeVersion: string | undefined; stopped: boolean; stop(): Promise<void>; reset(): Promise<void> }
const started = vi.hoisted(() => [] as FakeVm[]);
vi.mock('../../../src/vm/start-vm.js', () => ({
  startVm: vi.fn(async (options: { runtimeVersion?: string }) => {
    const vm: FakeVm = { runtimeVersion: options.runtimeVersion, stopped: false, stop: async () => { vm.stopped = true; }, reset: async () => {} };
    started.push(vm);
    return vm;
  }),
}));

const { forEachRuntime, vmTest, describeWithVm } = await import('../../../src/vitest/index.js');
const fake = (vm: unknown): FakeVm => vm as FakeVm;

const fileScoped: Record<string, FakeVm> = {};
forEachRuntime((runtimeVersion) => {
  const test = vmTest({ image: 'x.gvmi', runtimeVersion, scope: 'file' });
  test('vmTest (scope file) gets a VM of its block\'s runtime', ({ task, vm }) => {
    expect(task.suite?.name).toBe(`runtime ${runtimeVersion}`);
    expect(fake(vm).runtimeVersion).toBe(runtimeVersion);
    fileScoped[runtimeVersion] = fake(vm);
    // the previous runtime's VM was stopped when its block ended, before this one started
    if (runtimeVersion === '0.5') expect(fileScoped['0.4']!.stopped).toBe(true);
  });
  test('and keeps it for the block (not the other block\'s VM)', ({ vm }) => {
    expect(fake(vm)).toBe(fileScoped[runtimeVersion]);
    expect(fake(vm).stopped).toBe(false);
  });
});

forEachRuntime((runtimeVersion) => {
  describeWithVm('describeWithVm', { image: 'x.gvmi', runtimeVersion }, (vm) => {
    it('boots under the runtime it was given', () => {
      expect(fake(vm()).runtimeVersion).toBe(runtimeVersion);
    });
  });
}, ['0.5']);

describe('without runtimeVersion', () => {
  const saved = process.env['GVMI_TEST_RUNTIME_VERSION'];
  process.env['GVMI_TEST_RUNTIME_VERSION'] = '0.5';
  const fromEnv = vmTest({ image: 'x.gvmi' });
  delete process.env['GVMI_TEST_RUNTIME_VERSION'];
  const byDefault = vmTest({ image: 'x.gvmi' });
  if (saved !== undefined) process.env['GVMI_TEST_RUNTIME_VERSION'] = saved;

  fromEnv('GVMI_TEST_RUNTIME_VERSION decides (read when the fixture is made)', ({ vm }) => {
    expect(fake(vm).runtimeVersion).toBe('0.5');
  });
  byDefault('else 0.4', ({ vm }) => {
    expect(fake(vm).runtimeVersion).toBe('0.4');
  });
});

afterAll(() => {
  // every VM started here was stopped: the file-scoped ones by their block's afterAll
  expect(started.length).toBeGreaterThanOrEqual(5);
  expect(started.filter((vm) => vm.runtimeVersion === '0.4' || vm.runtimeVersion === '0.5').every((vm) => vm.stopped)).toBe(true);
});
