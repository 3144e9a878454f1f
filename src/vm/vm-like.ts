/**
 * What a VM offers to code that uses it: a StartedVm in this process, or a RemoteVm reached over
 * `gvmi-test serve`. The vitest fixture and matchers take either.
 */
import type { UpperUsageEntry } from '../agent/agent-client.js';
import type { Finding } from '../diagnostics/finding.js';
import type { ImageMetadata } from '../image/container-config.js';
import type { ExecResult, GuestProcess } from './guest-process.js';
import type { ExecOptions, SpawnOptions, VmStats } from './started-vm.js';
import type { RuntimeProfile } from '../runtime-profile.js';

export interface VmLikeInfo {
  image: string;
  metadata: ImageMetadata;
  shadowed: string[];
  accelerator: { accel: 'kvm' | 'tcg'; reason: string };
  /** The provider runtime the VM reproduces. */
  runtimeVersion: RuntimeProfile;
}

export interface VmLike extends AsyncDisposable {
  readonly info: VmLikeInfo;
  readonly volumes: readonly { guestPath: string; hostPath: string }[];
  readonly stopped: boolean;
  exec(command: string | readonly string[], options?: ExecOptions): Promise<ExecResult>;
  spawn(command: string | readonly string[], options?: SpawnOptions): Promise<GuestProcess>;
  upload(hostPath: string, guestPath: string): Promise<void>;
  download(guestPath: string, hostPath: string): Promise<unknown>;
  stats(): Promise<VmStats>;
  overlayUsage(limit?: number): Promise<UpperUsageEntry[]>;
  consoleTail(lines?: number): Promise<string>;
  diagnose(result: ExecResult): Promise<Finding[]>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}
