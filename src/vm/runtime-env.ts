/**
 * The runtime profile asked for in the environment: GVMI_TEST_RUNTIME_VERSION=0.5 switches every
 * VM a test run or a script starts without naming a profile, the way GVMI_TEST_ACCEL switches the
 * accelerator — so a whole existing suite can be tried under the other runtime unchanged.
 */
import { parseRuntimeProfile, type RuntimeProfile } from '../runtime-profile.js';

export const RUNTIME_VERSION_ENV = 'GVMI_TEST_RUNTIME_VERSION';

/** The caller's profile, else the environment's, else the default (0.4). */
export function runtimeProfileOrEnv(option: RuntimeProfile | undefined, env: NodeJS.ProcessEnv = process.env): RuntimeProfile {
  return option ?? parseRuntimeProfile(env[RUNTIME_VERSION_ENV], RUNTIME_VERSION_ENV);
}
