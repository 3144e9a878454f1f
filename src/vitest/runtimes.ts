/**
 * One suite under every provider runtime: a requestor does not choose the provider's runtime, and
 * 0.4 and 0.5 differ in what an image sees (the environment, the overlay's size, the hostname), so
 * an author's tests should pass under both. Each runtime's tests sit in a `runtime 0.4` /
 * `runtime 0.5` describe block, so a failure names the runtime it happened under.
 */
import { describe } from 'vitest';
import { RUNTIME_PROFILES, type RuntimeProfile } from '../runtime-profile.js';

/**
 * ```ts
 * forEachRuntime((runtimeVersion) => {
 *   describeWithVm('my image', { image: 'my.gvmi', runtimeVersion }, (vm) => { it(…) });
 * });
 * ```
 * `body` runs at collection time, once per runtime; pass `runtimeVersion` on to vmTest,
 * describeWithVm or startVm.
 */
export function forEachRuntime(body: (runtimeVersion: RuntimeProfile) => void, runtimes: readonly RuntimeProfile[] = RUNTIME_PROFILES): void {
  for (const runtime of runtimes) describe(`runtime ${runtime}`, () => body(runtime));
}
