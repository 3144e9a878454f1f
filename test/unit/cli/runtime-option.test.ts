import { describe, expect, it } from 'vitest';
import { parseRuntimeChoice, singleRuntime } from '../../../src/cli/runtime-option.js';
import { runtimeProfileOrEnv } from '../../../src/vm/runtime-env.js';
import { GvmiTestError } from '../../../src/errors.js';

function usageError(fn: () => unknown): GvmiTestError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(GvmiTestError);
    expect((error as GvmiTestError).code).toBe('usage');
    return error as GvmiTestError;
  }
  throw new Error('expected a usage error');
}

describe('--runtime-version', () => {
  it('a profile, with or without v and a patch number', () => {
    expect(parseRuntimeChoice('0.5', {})).toEqual({ kind: 'one', profile: '0.5' });
    expect(parseRuntimeChoice('v0.5.2', {})).toEqual({ kind: 'one', profile: '0.5' });
    expect(parseRuntimeChoice('0.4.2', {})).toEqual({ kind: 'one', profile: '0.4' });
  });

  it('all and both (any case) compare every profile, in order', () => {
    for (const word of ['all', 'both', 'ALL', ' Both ']) expect(parseRuntimeChoice(word, {})).toEqual({ kind: 'all', profiles: ['0.4', '0.5'] });
  });

  it('without the flag: GVMI_TEST_RUNTIME_VERSION, else 0.4; the flag wins over the environment', () => {
    expect(parseRuntimeChoice(undefined, {})).toEqual({ kind: 'one', profile: '0.4' });
    expect(parseRuntimeChoice(undefined, { GVMI_TEST_RUNTIME_VERSION: '0.5' })).toEqual({ kind: 'one', profile: '0.5' });
    expect(parseRuntimeChoice(undefined, { GVMI_TEST_RUNTIME_VERSION: 'all' })).toEqual({ kind: 'all', profiles: ['0.4', '0.5'] });
    expect(parseRuntimeChoice('0.4', { GVMI_TEST_RUNTIME_VERSION: '0.5' })).toEqual({ kind: 'one', profile: '0.4' });
  });

  it('an unknown value is a usage error naming where it came from and the profiles', () => {
    const fromFlag = usageError(() => parseRuntimeChoice('0.3', {}));
    expect(fromFlag.message).toMatch(/^--runtime-version "0\.3": not a runtime profile \(0\.4, 0\.5\)/);
    expect(fromFlag.hint).toContain('0.5: ');
    const fromEnv = usageError(() => parseRuntimeChoice(undefined, { GVMI_TEST_RUNTIME_VERSION: 'latest' }));
    expect(fromEnv.message).toMatch(/^GVMI_TEST_RUNTIME_VERSION "latest"/);
  });

  it('shell and serve boot one VM: all is refused there, a profile passes', () => {
    expect(singleRuntime({ kind: 'one', profile: '0.5' }, 'shell')).toBe('0.5');
    const e = usageError(() => singleRuntime(parseRuntimeChoice('all', {}), 'serve'));
    expect(e.message).toMatch(/^serve: --runtime-version all .* only `run` does/);
  });

  it('the library default: the option, else the environment, else 0.4', () => {
    expect(runtimeProfileOrEnv('0.5', { GVMI_TEST_RUNTIME_VERSION: '0.4' })).toBe('0.5');
    expect(runtimeProfileOrEnv(undefined, { GVMI_TEST_RUNTIME_VERSION: '0.5' })).toBe('0.5');
    expect(runtimeProfileOrEnv(undefined, {})).toBe('0.4');
    expect(usageError(() => runtimeProfileOrEnv(undefined, { GVMI_TEST_RUNTIME_VERSION: 'all' })).message).toMatch(/^GVMI_TEST_RUNTIME_VERSION "all"/);
  });
});
