/**
 * Provider traps that show while a command runs: the 128 MiB overlay filling up, output larger
 * than what a provider reliably delivers, a 0.5 runtime starting the command without the image
 * Env. Pure functions over what the VM reported.
 */
import type { UpperUsageEntry } from '../agent/agent-client.js';
import type { RuntimeProfile } from '../runtime-profile.js';
import type { Finding } from './finding.js';
import { constants } from 'node:os';
import { formatBytes } from '../format-bytes.js';
import { signalStatus } from '../signals.js';
import { deployVolumeFindings, type DeployVolumeState } from './deploy-volume-findings.js';

/** The requestor's buffer per stream (golem's default RFD: PIPE_CYCLIC 4096; ya-runtime-vm lib.rs). */
export const PROVIDER_OUTPUT_BUFFER = 4096;
/** "Nearly full": what is left can't hold even a small file's worth of blocks. */
const NEARLY_FULL_RATIO = 0.95;

export interface ExecOutcome {
  exitCode: number | null;
  /** The signal's name when one ended the process (ExecResult has it). */
  signal?: string | null;
  /** Killed by its own timeout: exec.timeout says so, not killed-by-signal. */
  timedOut?: boolean;
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

/**
 * `root`: the deploy volume that holds the overlay's writable layer when the requestor put a ram
 * or storage volume at `/` (runtime 0.5); then its size, not the runtime's, is the space outside
 * volumes.
 */
export function overlayFullFinding(overlay: OverlayState, largest: readonly UpperUsageEntry[], volumes: readonly string[], root?: { kind: 'ram' | 'storage' }): Finding {
  const target = volumes.find((v) => /output/.test(v)) ?? volumes[0];
  const where = root
    ? `/ is an overlay on the ${root.kind} volume the deploy put at / (${formatBytes(overlay.totalBytes)}${root.kind === 'ram' ? ', in the VM\'s memory' : ', an ext2 disk'})`
    : `/ is a ${formatBytes(overlay.totalBytes)} RAM overlay on a provider`;
  const bigger = root
    ? `ask for a bigger ${root.kind} volume at / (--${root.kind}-volume /:SIZE, deployVolumes: { '/': { kind: '${root.kind}', sizeMiB } }), `
    : '';
  return {
    code: 'overlay-full',
    severity: 'error',
    message: `out of space: ${where}; ${formatBytes(overlay.usedBytes, 1)} were written outside volumes`,
    fix: target
      ? `${bigger}write large files to a VOLUME such as ${target} (it is a host directory, not RAM), or include static files in the image instead of creating them at run time`
      : `${bigger}declare a VOLUME (e.g. /golem/output) and write large files there, or include static files in the image instead of creating them at run time`,
    // Empty files took no space: listing them as "(0 B)" only hides the ones that did.
    paths: largest.filter((e) => e.bytes > 0).map((e) => `${e.path} (${formatBytes(e.bytes)})`),
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
    message: `the command wrote ${big.join(' and ')}; a provider passes output through a ${PROVIDER_OUTPUT_BUFFER}-byte buffer per stream, read only while it has room, and when the process exits whatever is still in its pipe is dropped with it: a requestor may receive only the beginning (yagna #3450)`,
    fix: `write results to a file in a volume (e.g. ${target}/result.txt) and download it, and keep stdout for short status lines`,
    details: { stdoutBytes: outcome.stdoutBytes, stderrBytes: outcome.stderrBytes, limit: PROVIDER_OUTPUT_BUFFER },
  };
}

/** What each common signal usually means when it ends a command. */
const SIGNAL_CAUSES: Record<string, { what: string; fix: string }> = {
  SIGKILL: {
    what: 'usually the guest\'s OOM killer (out of memory), or a kill from outside',
    fix: 'if the guest ran out of memory, give the VM more (--memory, or memory in startVm; a provider gives what its offer says) or make the command use less; the findings and output above may say more',
  },
  SIGBUS: {
    what: 'a bus error: the program touched memory that could not be read, typically a file it mapped that the kernel could not load: a damaged image, or a file truncated while mapped',
    fix: 'look for image-corrupt above (gvmi-test inspect --verify reads every block of the image); otherwise check the files the program maps',
  },
  SIGSEGV: { what: 'a segmentation fault: a crash in the program itself', fix: 'debug the program (it crashes the same way on a provider); check it was built for this CPU and libc' },
  SIGILL: { what: 'an illegal instruction: the program uses a CPU feature this (virtual) CPU lacks', fix: 'build for a baseline x86-64 CPU (providers\' CPUs differ, and so may the one gvmi-test emulates)' },
  SIGABRT: { what: 'the program aborted itself (abort(), a failed assertion, an uncaught C++ exception)', fix: 'read its stderr above for the reason' },
  SIGPIPE: { what: 'it wrote to a pipe nobody reads any more', fix: 'check the other end of its pipes' },
};

/**
 * A command ended by a signal: said in one line, as a shell does ("Bus error"), since the exit
 * status alone (128+N here, the bare N for a requestor, indistinguishable from `exit N`) says
 * little. Not for a command gvmi-test killed itself at its timeout (exec.timeout says that).
 */
export function killedBySignalFinding(outcome: Pick<ExecOutcome, 'signal' | 'timedOut'> & { signalNumber?: number }): Finding | undefined {
  if (!outcome.signal || outcome.timedOut) return undefined;
  const cause = SIGNAL_CAUSES[outcome.signal];
  const n = outcome.signalNumber;
  return {
    code: 'killed-by-signal',
    severity: 'error',
    message: `killed by ${outcome.signal}${cause ? ` (${cause.what})` : ''}${n === undefined ? '' : `; gvmi-test exits ${signalStatus(n)}, a requestor sees only "exit code ${n}"`}`,
    fix: cause?.fix ?? 'the signal came from the program itself, another process, or the kernel: check its output above',
    details: { signal: outcome.signal, ...(n === undefined ? {} : { signalNumber: n }) },
  };
}

/** A shell's or a program's "not found" (busybox: `sh: ls: not found`, bash: `command not found`). */
const NOT_FOUND = /\bnot found\b/i;

/**
 * ya-runtime-vm 0.5 starts every process with an EMPTY environment whenever the requestor sends
 * Env, and a provider always sends the image Env (reference §8; PR #201, open): no PATH, none of
 * the image's variables. An image tested only where Env is applied (Docker, runtime 0.4) breaks
 * there in ways that look unrelated (`sh: python3: not found`, a config path unset), so every
 * failure, or output saying `not found`, under 0.5 of an image with an Env gets this finding.
 * `imageEnv` is the image Env as KEY=VALUE entries (variables given per command are lost too).
 */
export function envDroppedFinding(
  runtime: RuntimeProfile,
  imageEnv: readonly string[],
  outcome: Pick<ExecOutcome, 'exitCode' | 'stdout' | 'stderr'> & { execFailure?: object | null },
): Finding | undefined {
  if (runtime !== '0.5' || imageEnv.length === 0) return undefined;
  // A program that never started did not run into its environment (execve takes the path as
  // given under both runtimes): exec-failed says what happened.
  if (outcome.execFailure) return undefined;
  const failed = outcome.exitCode !== 0;
  if (!failed && !NOT_FOUND.test(outcome.stdout) && !NOT_FOUND.test(outcome.stderr)) return undefined;
  const names = imageEnv.map((e) => e.split('=', 1)[0]!);
  const path = imageEnv.find((e) => e.startsWith('PATH='));
  const what = failed ? `the command failed (${outcome.exitCode === null ? 'killed by a signal' : `exit ${outcome.exitCode}`})` : 'the command printed "not found"';
  return {
    code: 'image-env-dropped',
    severity: 'warning',
    message: `${what} under runtime 0.5, which starts every process with an EMPTY environment when the image has an Env (ya-runtime-vm PR #201): it did not get ${names.join(', ')}`,
    fix: `set what the command needs in the command itself (${path ? `/bin/sh -c 'export ${path}; …'` : "/bin/sh -c 'export NAME=value; …'"}), or call programs by absolute path; \`run --runtime-version all\` shows both runtimes side by side`,
    paths: [...imageEnv],
    details: { runtimeVersion: runtime, variables: names, exitCode: outcome.exitCode },
  };
}

/** What diagnoseResult needs of a VM, local or remote. */
export interface DiagnosableVm {
  readonly volumes: readonly { guestPath: string }[];
  readonly info: {
    readonly runtimeVersion: RuntimeProfile;
    readonly metadata: { readonly env: readonly string[] };
    /** The requestor's deploy volumes (runtime 0.5), when any. */
    readonly deployVolumes?: readonly { guestPath: string; kind: 'host' | 'ram' | 'storage' }[];
  };
  stats(): Promise<{ overlay: OverlayState; deployVolumes?: readonly DeployVolumeState[] }>;
  overlayUsage(limit?: number): Promise<UpperUsageEntry[]>;
}

/** The run-time findings for one command's result (asks the VM for stats only when running). */
export async function diagnoseResult(vm: DiagnosableVm, result: ExecOutcome, running: boolean): Promise<Finding[]> {
  const findings: Finding[] = [];
  const volumes = vm.volumes.map((v) => v.guestPath);
  const killed = killedBySignalFinding({ ...result, ...(result.signal ? { signalNumber: signalNumberOrUndefined(result.signal) } : {}) });
  if (killed) findings.push(killed);
  if (running) {
    const stats = await vm.stats();
    const root = vm.info.deployVolumes?.find((v) => v.guestPath === '/' && v.kind !== 'host') as { kind: 'ram' | 'storage' } | undefined;
    // A ram or storage volume of the deploy that filled (or went read-only): named with its kind.
    const volumeFindings = deployVolumeFindings(stats.deployVolumes ?? [], volumes.find((v) => /output/.test(v)) ?? volumes[0]);
    // An ENOSPC such a volume explains does not blame the overlay, unless the overlay is full too.
    const overlayFull = overlaySuspect({ ...result, exitCode: 0 }, stats.overlay);
    if (overlayFull || (volumeFindings.length === 0 && overlaySuspect(result, stats.overlay))) {
      findings.push(overlayFullFinding(stats.overlay, await vm.overlayUsage(5), volumes, root));
    }
    findings.push(...volumeFindings);
  }
  const output = outputSizeFinding(result, volumes);
  if (output) findings.push(output);
  const env = envDroppedFinding(vm.info.runtimeVersion, vm.info.metadata.env, result);
  if (env) findings.push(env);
  return findings;
}

/**
 * Volumes bound at a path the image does not declare as a VOLUME (`--volume /data=DIR`,
 * `--host-volume`, `startVm({ volumes, deployVolumes })`). Only runtime 0.5 mounts such a
 * volume, and only when the requestor's Deploy asks for it (a `host` volume; 0.4 has the image's
 * volumes only, and gvmi-test refuses them there before booting): a requestor who does not ask
 * finds a plain directory of the image there, in the overlay, that no transfer reaches.
 */
export function extraVolumeFinding(mounted: readonly string[], imageVolumes: readonly string[]): Finding | undefined {
  const extra = mounted.filter((v) => !imageVolumes.includes(v));
  if (extra.length === 0) return undefined;
  return {
    code: 'volume-not-in-image',
    severity: 'info',
    message: `${extra.length} volume(s) mounted where the image declares no VOLUME: a provider mounts such a path only under ya-runtime-vm 0.5 and only when the requestor's Deploy asks for a host volume there; otherwise it is an ordinary directory in the overlay that no transfer reaches, and a 0.4 provider never mounts it`,
    fix: `ask for it at deploy (volumes: { '${extra[0]}': host }), ${imageVolumes.length > 0 ? `bind one of the image's volumes instead (--volume ${imageVolumes[0]}=DIR; the image has ${imageVolumes.join(', ')}), ` : ''}or add VOLUME ${extra.join(' ')} to the image (gvmi-test build --volume ${extra[0]}) so that every provider mounts it`,
    paths: extra,
  };
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

function signalNumberOrUndefined(name: string): number | undefined {
  return (constants.signals as Record<string, number | undefined>)[name];
}
