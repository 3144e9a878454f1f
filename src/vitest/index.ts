/**
 * gvmi-test/vitest: assert a Golem image's behaviour under provider conditions in vitest.
 * Importing it registers the matchers (toSucceed, toExitWith, toHaveStdout, toHaveStderr,
 * toFailWithENOSPC, toHaveFile, toShadow).
 */
import { expect } from 'vitest';
import { gvmiMatchers, type GvmiMatchers } from './matchers.js';

expect.extend(gvmiMatchers);

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any, @typescript-eslint/no-empty-object-type
  interface Matchers<T = any> extends GvmiMatchers<T> {}
}

export { vmTest, describeWithVm, type VmFixtureOptions, type RemoteVmFixtureOptions, type DescribeWithVmOptions, type DescribeWithRemoteVmOptions, type VmReset } from './fixture.js';
export { forEachRuntime } from './runtimes.js';
export { describeWithCluster, type Cluster, type ClusterNodeOptions, type DescribeWithClusterOptions } from './cluster.js';
export { RUNTIME_PROFILES, type RuntimeProfile } from '../runtime-profile.js';
export { vmTimeout, timeoutScale } from './timeouts.js';
export { gvmiMatchers, describeResult, type GvmiMatchers } from './matchers.js';
export { startVm, type StartedVm, type ExecResult, type StartVmOptions } from '../index.js';
