/**
 * Which provider runtime a VM reproduces. Golem's ya-runtime-vm changed what an image sees between
 * its 0.4 and 0.5 lines (reference §8): the overlay's writable layer (its own 128 MiB tmpfs, or a
 * directory on the guest's root tmpfs, half of RAM), the environment when the requestor sends one
 * (the image Env, or nothing at all: PR #201), the 9p msize, the hostname (none set, or `golem`).
 * The default is 0.4: what Golem's own documents describe (128 MB of space outside volumes).
 */
import { GvmiTestError } from './errors.js';

export const RUNTIME_PROFILES = ['0.4', '0.5'] as const;
export type RuntimeProfile = (typeof RUNTIME_PROFILES)[number];
export const DEFAULT_RUNTIME_PROFILE: RuntimeProfile = '0.4';

/** What each profile reproduces, for help texts and reports. */
export const RUNTIME_PROFILE_SUMMARY: Record<RuntimeProfile, string> = {
  '0.4': 'ya-runtime-vm 0.4.x: 128 MiB tmpfs overlay, the image Env applied, no hostname set',
  '0.5': 'ya-runtime-vm 0.5.x: overlay on the root tmpfs (half of RAM), an EMPTY environment whenever Env is sent, hostname golem',
};

export function parseRuntimeProfile(value: string | undefined, what = '--runtime-version'): RuntimeProfile {
  if (value === undefined || value === '') return DEFAULT_RUNTIME_PROFILE;
  const normalised = value.replace(/^v/, '').split('.').slice(0, 2).join('.');
  if ((RUNTIME_PROFILES as readonly string[]).includes(normalised)) return normalised as RuntimeProfile;
  throw new GvmiTestError('usage', `${what} ${JSON.stringify(value)}: not a runtime profile (${RUNTIME_PROFILES.join(', ')})`, {
    hint: Object.entries(RUNTIME_PROFILE_SUMMARY).map(([k, v]) => `${k}: ${v}`).join('; '),
  });
}
