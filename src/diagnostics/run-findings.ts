/**
 * Provider traps that show while a command runs: the 128 MB overlay filling up, output larger
 * than what a provider reliably delivers. Pure functions over what the VM reported.
 */
import type { UpperUsageEntry } from '../agent/agent-client.js';
import type { Finding } from './finding.js';

/** ya-runtime-vm keeps 4 KiB cyclic buffers of stdout and stderr (yagna #2019, #3450). */
export const PROVIDER_OUTPUT_BUFFER = 4096;
/** "Nearly full": what is left can't hold even a small file's worth of blocks. */
const NEARLY_FULL_RATIO = 0.95;
const MIB = 1024 * 1024;

export interface ExecOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
}

export interface OverlayState {
  totalBytes: number;
  usedBytes: number;
}

export function mentionsEnospc(outcome: ExecOutcome): boolean {
  return /No space left on device|ENOSPC/i.test(outcome.stderr) || /No space left on device/i.test(outcome.stdout);
}

/**
 * Whether to blame the overlay: a failed command that says ENOSPC, or an overlay (nearly) full
 * whatever the exit status (a script may swallow the error; the next command will not).
 */
export function overlaySuspect(outcome: ExecOutcome, overlay: OverlayState): boolean {
  const full = overlay.usedBytes >= overlay.totalBytes * NEARLY_FULL_RATIO;
  return full || (outcome.exitCode !== 0 && mentionsEnospc(outcome));
}

export function overlayFullFinding(overlay: OverlayState, largest: readonly UpperUsageEntry[], volumes: readonly string[]): Finding {
  const totalMb = Math.round(overlay.totalBytes / MIB);
  const usedMb = (overlay.usedBytes / MIB).toFixed(1);
  const target = volumes.find((v) => /output/.test(v)) ?? volumes[0];
  return {
    code: 'overlay-full',
    severity: 'error',
    message: `out of space: / is a ${totalMb} MB RAM overlay on a provider; ${usedMb} MB were written outside volumes`,
    fix: target
      ? `write large files to a VOLUME such as ${target} (it is a host directory, not RAM), or include static files in the image instead of creating them at run time`
      : 'declare a VOLUME (e.g. /golem/output) and write large files there, or include static files in the image instead of creating them at run time',
    paths: largest.map((e) => `${e.path} (${(e.bytes / MIB).toFixed(1)} MB)`),
    details: { overlayTotalBytes: overlay.totalBytes, overlayUsedBytes: overlay.usedBytes, largest },
  };
}

export function outputSizeFinding(outcome: ExecOutcome, volumes: readonly string[]): Finding | undefined {
  const big = [
    outcome.stdoutBytes > PROVIDER_OUTPUT_BUFFER ? `stdout ${outcome.stdoutBytes} bytes` : '',
    outcome.stderrBytes > PROVIDER_OUTPUT_BUFFER ? `stderr ${outcome.stderrBytes} bytes` : '',
  ].filter(Boolean);
  if (big.length === 0) return undefined;
  const target = volumes.find((v) => /output/.test(v)) ?? volumes[0] ?? '/golem/output';
  return {
    code: 'output-truncated-on-provider',
    severity: 'warning',
    message: `the command wrote ${big.join(' and ')}; a provider keeps only the last ${PROVIDER_OUTPUT_BUFFER} bytes of each stream, so a requestor would see it truncated`,
    fix: `write results to a file in a volume (e.g. ${target}/result.txt) and download it, and keep stdout for short status lines`,
    details: { stdoutBytes: outcome.stdoutBytes, stderrBytes: outcome.stderrBytes, limit: PROVIDER_OUTPUT_BUFFER },
  };
}

/** What diagnoseResult needs of a VM, local or remote. */
export interface DiagnosableVm {
  readonly volumes: readonly { guestPath: string }[];
  stats(): Promise<{ overlay: OverlayState }>;
  overlayUsage(limit?: number): Promise<UpperUsageEntry[]>;
}

/** The run-time findings for one command's result (asks the VM for stats only when running). */
export async function diagnoseResult(vm: DiagnosableVm, result: ExecOutcome, running: boolean): Promise<Finding[]> {
  const findings: Finding[] = [];
  const volumes = vm.volumes.map((v) => v.guestPath);
  if (running) {
    const stats = await vm.stats();
    if (overlaySuspect(result, stats.overlay)) findings.push(overlayFullFinding(stats.overlay, await vm.overlayUsage(5), volumes));
  }
  const output = outputSizeFinding(result, volumes);
  if (output) findings.push(output);
  return findings;
}

export function shadowingFinding(shadowed: readonly string[]): Finding | undefined {
  if (shadowed.length === 0) return undefined;
  return {
    code: 'shadowed-files',
    severity: 'warning',
    message: `${shadowed.length} file(s) baked into the image under a volume are hidden: a provider mounts an empty directory over each volume`,
    fix: 'move them out of the volume paths (e.g. /golem/resources), or send them as inputs at run time',
    paths: [...shadowed],
  };
}
