import { describe, expect, it } from 'vitest';
import { hostMemoryLimitMiB, MAX_CPUS, MIN_MEMORY_MIB, validateResources } from '../../../src/vm/resource-limits.js';
import { GvmiTestError } from '../../../src/errors.js';

function refusal(request: Parameters<typeof validateResources>[0], hostMiB = 4096): GvmiTestError {
  try {
    validateResources(request, () => hostMiB);
  } catch (e) {
    expect(e).toBeInstanceOf(GvmiTestError);
    return e as GvmiTestError;
  }
  throw new Error(`${JSON.stringify(request)} was accepted`);
}

describe('VM resources are checked before booting', () => {
  it.each([1, 32, MIN_MEMORY_MIB - 1])('memory %i MiB is too little, and the error names the range', (memory) => {
    const e = refusal({ memory });
    expect(e.code).toBe('usage');
    expect(e.message).toContain(`guest memory ${memory} MiB is too little`);
    expect(e.message).toContain(`allowed here: ${MIN_MEMORY_MIB} to 4096 MiB`);
    expect(e.hint).toMatch(/--memory/);
  });

  it('more memory than the host has available is refused with what it has', () => {
    const e = refusal({ memory: 100000 });
    expect(e.code).toBe('usage');
    expect(e.message).toContain('guest memory 100000 MiB is more than this host has available (4096 MiB free)');
  });

  it.each([0, -5, 1.5, Number.NaN])('memory %s is not a number of MiB', (memory) => {
    expect(refusal({ memory }).message).toMatch(/a whole number of MiB/);
  });

  it.each([0, 1.5, MAX_CPUS + 1])('cpus %s is refused with the range', (cpus) => {
    const e = refusal({ cpus });
    expect(e.code).toBe('usage');
    expect(e.message).toContain(`allowed: 1 to ${MAX_CPUS}`);
  });

  it('an overlay of no size is refused', () => {
    expect(refusal({ overlayMiB: 0 }).message).toMatch(/overlay size 0/);
  });

  it('what is in range passes; nothing given is the defaults', () => {
    expect(() => validateResources({ memory: MIN_MEMORY_MIB, cpus: 1, overlayMiB: 128 }, () => 4096)).not.toThrow();
    expect(() => validateResources({ memory: 4096, cpus: MAX_CPUS }, () => 4096)).not.toThrow();
    expect(() => validateResources({}, () => 0)).not.toThrow();
  });

  it('the host limit is what it has available, in MiB', () => {
    expect(hostMemoryLimitMiB()).toBeGreaterThan(0);
  });
});
