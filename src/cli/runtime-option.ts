/**
 * `--runtime-version <0.4|0.5|all>`: which provider runtime a command's VM reproduces. `all` (or
 * `both`) is `run`'s comparison mode: the same command once per profile. Without the flag,
 * GVMI_TEST_RUNTIME_VERSION decides, then the default (0.4).
 */
import { GvmiTestError } from '../errors.js';
import { RUNTIME_PROFILES, parseRuntimeProfile, type RuntimeProfile } from '../runtime-profile.js';
import { RUNTIME_VERSION_ENV } from '../vm/runtime-env.js';

/** A single profile, or every profile in order (compare mode). */
export type RuntimeChoice = { kind: 'one'; profile: RuntimeProfile } | { kind: 'all'; profiles: readonly RuntimeProfile[] };

const ALL_WORDS = new Set(['all', 'both']);

export function parseRuntimeChoice(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): RuntimeChoice {
  const fromFlag = flag !== undefined && flag !== '';
  const value = fromFlag ? flag : env[RUNTIME_VERSION_ENV];
  const what = fromFlag ? '--runtime-version' : RUNTIME_VERSION_ENV;
  if (value !== undefined && ALL_WORDS.has(value.trim().toLowerCase())) return { kind: 'all', profiles: RUNTIME_PROFILES };
  return { kind: 'one', profile: parseRuntimeProfile(value?.trim(), what) };
}

/** For commands that boot one VM (shell, serve): `all` has nothing to compare there. */
export function singleRuntime(choice: RuntimeChoice, command: string): RuntimeProfile {
  if (choice.kind === 'one') return choice.profile;
  throw new GvmiTestError('usage', `${command}: --runtime-version all runs a command once per runtime, which only \`run\` does`, {
    hint: `give one of ${RUNTIME_PROFILES.join(', ')} (or unset ${RUNTIME_VERSION_ENV})`,
  });
}
