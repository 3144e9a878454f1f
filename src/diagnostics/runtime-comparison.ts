/**
 * One command run under several provider runtimes, compared: whether the statuses and streams
 * agree, the findings per runtime, and a one-line verdict saying where it works and, when one
 * runtime fails, the likeliest reason ("works on 0.4, fails on 0.5 (exit 127): PATH is empty under
 * 0.5 because the runtime sends no environment"). Pure: `run --runtime-version all` and library
 * callers feed it what each run produced.
 */
import type { ErrorCode } from '../errors.js';
import type { RuntimeProfile } from '../runtime-profile.js';
import type { Finding, FindingCode } from './finding.js';
import { formatBytes } from '../format-bytes.js';

export interface RuntimeRun {
  runtimeVersion: RuntimeProfile;
  /** The command's exit status; null when a signal ended it or it never ran to its end (`error`). */
  exitCode: number | null;
  signal: string | null;
  /**
   * What `run` exits with for this runtime alone: the command's status (128+N for signal N), or
   * the status of the error that stopped it (124 timeout, 70 the VM failed, …).
   */
  status: number;
  stdout: string;
  stderr: string;
  /** Why the command did not run to its end (timed out, the VM failed, a transfer refused). */
  error?: { code: ErrorCode; message: string };
  findings: readonly Finding[];
}

export interface RuntimeComparison {
  runtimes: RuntimeProfile[];
  /** `run`'s status per runtime. */
  statuses: Partial<Record<RuntimeProfile, number>>;
  sameStatus: boolean;
  sameStdout: boolean;
  sameStderr: boolean;
  passed: RuntimeProfile[];
  failed: RuntimeProfile[];
  /** Finding codes per runtime. */
  findings: Partial<Record<RuntimeProfile, FindingCode[]>>;
  verdict: string;
  /** What `run --runtime-version all` exits with: 0 when every runtime passed, else the first failure's status. */
  status: number;
}

export interface ComparisonContext {
  /** The image Env: when outputs differ with no failure, 0.5's empty environment is the usual cause. */
  imageEnv?: readonly string[];
}

/** "exit 127", "killed by SIGKILL", "exec.timeout". */
export function describeOutcome(run: RuntimeRun): string {
  if (run.error) return run.error.code;
  if (run.signal) return `killed by ${run.signal}`;
  return `exit ${run.exitCode ?? run.status}`;
}

function joinWords(words: readonly string[]): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

/** A finding as the clause after the verdict's colon: the cause in a few words. */
export function findingReason(finding: Finding, runtime: RuntimeProfile): string {
  if (finding.code === 'image-env-dropped') {
    // PATH first: a program not found is the commonest way this shows.
    const variables = [...((finding.details?.['variables'] as string[] | undefined) ?? [])].sort((a, b) => Number(b === 'PATH') - Number(a === 'PATH'));
    const named = variables.length > 4 ? [...variables.slice(0, 3), `${variables.length - 3} more`] : variables;
    return `${joinWords(named)} ${variables.length > 1 ? 'are' : 'is'} empty under ${runtime} because the runtime sends no environment`;
  }
  if (finding.code === 'overlay-full') {
    const total = finding.details?.['overlayTotalBytes'];
    const size = typeof total === 'number' ? `${formatBytes(total)} ` : '';
    return `the ${size}overlay filled up under ${runtime} (files written outside volumes)`;
  }
  return finding.message;
}

const SEVERITY_ORDER = { error: 0, warning: 1, info: 2 } as const;

/**
 * The likeliest reason a runtime failed where others passed: a finding only it got (errors first),
 * else the error that stopped the command.
 */
function failureReason(failing: RuntimeRun, passing: readonly RuntimeRun[]): string | undefined {
  const elsewhere = new Set(passing.flatMap((r) => r.findings.map((f) => f.code)));
  const own = failing.findings.filter((f) => !elsewhere.has(f.code)).sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
  if (own[0]) return findingReason(own[0], failing.runtimeVersion);
  return failing.error?.message;
}

export function compareRuntimeRuns(runs: readonly RuntimeRun[], context: ComparisonContext = {}): RuntimeComparison {
  const runtimes = runs.map((r) => r.runtimeVersion);
  const passedRuns = runs.filter((r) => r.status === 0);
  const failedRuns = runs.filter((r) => r.status !== 0);
  const first = runs[0];
  const sameStatus = runs.every((r) => r.status === first?.status);
  const sameStdout = runs.every((r) => r.stdout === first?.stdout);
  const sameStderr = runs.every((r) => r.stderr === first?.stderr);

  let verdict: string;
  if (failedRuns.length === 0) {
    const differing = [...(sameStdout ? [] : ['stdout']), ...(sameStderr ? [] : ['stderr'])];
    verdict = `works on ${joinWords(runtimes)}`;
    if (differing.length === 0) verdict += runs.length > 1 ? ' with the same output' : '';
    else {
      verdict += `, but ${joinWords(differing)} ${differing.length > 1 ? 'differ' : 'differs'}`;
      const env = context.imageEnv ?? [];
      if (runtimes.includes('0.5') && env.length > 0) {
        verdict += `: under 0.5 the process gets no environment (the image sets ${env.map((e) => e.split('=', 1)[0]).join(', ')})`;
      }
    }
  } else if (passedRuns.length === 0) {
    verdict = `fails on ${joinWords(failedRuns.map((r) => `${r.runtimeVersion} (${describeOutcome(r)})`))}`;
    if (runs.length > 1 && sameStatus && sameStdout && sameStderr) verdict += ', the same way';
  } else {
    const failures = failedRuns.map((r) => {
      const reason = failureReason(r, passedRuns);
      return `${r.runtimeVersion} (${describeOutcome(r)})${reason ? `: ${reason}` : ''}`;
    });
    verdict = `works on ${joinWords(passedRuns.map((r) => r.runtimeVersion))}, fails on ${failures.join('; ')}`;
  }

  return {
    runtimes,
    statuses: Object.fromEntries(runs.map((r) => [r.runtimeVersion, r.status])),
    sameStatus, sameStdout, sameStderr,
    passed: passedRuns.map((r) => r.runtimeVersion),
    failed: failedRuns.map((r) => r.runtimeVersion),
    findings: Object.fromEntries(runs.map((r) => [r.runtimeVersion, r.findings.map((f) => f.code)])),
    verdict,
    status: failedRuns[0]?.status ?? 0,
  };
}
