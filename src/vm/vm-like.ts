/**
 * What a VM offers to code that uses it: a StartedVm in this process, or a RemoteVm reached over
 * `gvmi-test serve`. Both run processes through one process layer (process-runner.ts); the vitest
 * fixture, the matchers, serveVm and the requestor helpers take either. What differs by kind has
 * its own name on each class: a StartedVm's stop() and reset(), a RemoteVm's disconnect() and
 * shutdown(); ending a handle in common is `await using` ([Symbol.asyncDispose]).
 */
import type { DeployVolumeState } from '../diagnostics/deploy-volume-findings.js';
import type { UpperUsageEntry } from '../agent/agent-client.js';
import type { Finding } from '../diagnostics/finding.js';
import type { ImageMetadata } from '../image/container-config.js';
import type { RuntimeProfile } from '../runtime-profile.js';
import type { ExecResult, GuestProcess } from './guest-process.js';
import type { ExecOptions, SpawnOptions } from './process-options.js';
import type { DownloadOptions, DownloadReport } from './transfer.js';

export interface VmLikeInfo {
  image: string;
  metadata: ImageMetadata;
  shadowed: string[];
  accelerator: { accel: 'kvm' | 'tcg'; reason: string };
  /** The provider runtime the VM reproduces. */
  runtimeVersion: RuntimeProfile;
}

export interface VmStats {
  overlay: { totalBytes: number; usedBytes: number; freeBytes: number };
  memory: { totalBytes: number; availableBytes: number };
  uptimeMs: number;
  runningProcesses: number;
  /** Each ram and storage volume of the deploy (runtime 0.5): size, use, read-only now. */
  deployVolumes?: DeployVolumeState[];
}

export interface VmLike extends AsyncDisposable {
  readonly info: VmLikeInfo;
  readonly volumes: readonly { guestPath: string; hostPath: string }[];
  /** This handle runs nothing more: the VM was stopped, or the connection to it closed. */
  readonly stopped: boolean;
  exec(command: string | readonly string[], options?: ExecOptions): Promise<ExecResult>;
  spawn(command: string | readonly string[], options?: SpawnOptions): Promise<GuestProcess>;
  upload(hostPath: string, guestPath: string): Promise<void>;
  /** `options.limits` bounds what one download may bring back (DEFAULT_DOWNLOAD_LIMITS otherwise; a served VM applies the server's). */
  download(guestPath: string, hostPath: string, options?: DownloadOptions): Promise<DownloadReport>;
  stats(): Promise<VmStats>;
  overlayUsage(limit?: number): Promise<UpperUsageEntry[]>;
  consoleTail(lines?: number): Promise<string>;
  diagnose(result: ExecResult): Promise<Finding[]>;
  /** Kills every process this handle started (and waits for them); the VM and its volumes stay. */
  killProcesses(): Promise<void>;
}

/** Results of vm.exec() carry their VM under this key (not enumerable), for matchers' diagnostics. */
export const RESULT_VM = Symbol.for('gvmi-test.result-vm');

/** The VM whose exec() returned `result`, if it came from one. */
export function vmOfResult(result: ExecResult): VmLike | undefined {
  return (result as unknown as Record<symbol, VmLike | undefined>)[RESULT_VM];
}
