/**
 * `run --runtime-version all`: the same command, with the same inputs, once per provider runtime
 * (one after the other: two VMs at once would only slow each other down), each run's output
 * marked with its runtime, then the comparison and a one-line verdict. An image that works under
 * 0.4 may fail under 0.5 (no environment, a bigger overlay, a hostname), and a requestor does not
 * choose the provider's runtime: the author has to know both.
 */
import { GvmiTestError } from '../errors.js';
import { compareRuntimeRuns, describeOutcome, type RuntimeComparison, type RuntimeRun } from '../diagnostics/runtime-comparison.js';
import { RUNTIME_PROFILE_SUMMARY, type RuntimeProfile } from '../runtime-profile.js';
import { readGvmi } from '../image/gvmi-file.js';
import { exitCodeFor, ExitStatus } from './exit-codes.js';
import { writeLine, type CliIo } from './io.js';
import { runUnder, type RunPlan } from './run-under.js';
import { printable } from '../terminal-safe.js';

/**
 * Errors that would be the same under every runtime (a bad option, a missing tool, a broken
 * image): the comparison has nothing to say, so they end the command as in a single run.
 */
function sameEverywhere(error: unknown): boolean {
  if (!(error instanceof GvmiTestError)) return true;
  return error.code === 'usage' || /^(setup|image|build)\./.test(error.code);
}

/** `record`: what --json adds to the result (the engine image the file was converted from). */
export async function runEveryRuntime(plan: RunPlan, runtimes: readonly RuntimeProfile[], record: <T extends object>(result: T) => T = (result) => result): Promise<void> {
  const { io, flags } = plan;
  const json = flags.json ?? false;
  const runs: RuntimeRun[] = [];
  const records: Record<string, unknown>[] = [];
  for (const runtime of runtimes) {
    if (!json) writeLine(io.stderr, `gvmi-test: ── runtime ${runtime} (${RUNTIME_PROFILE_SUMMARY[runtime]}) ──`);
    try {
      const outcome = await runUnder(plan, runtime, runtime);
      if (outcome.failure && !json) printFailure(io, runtime, outcome.failure);
      runs.push(outcome.run);
      records.push(outcome.record);
    } catch (error) {
      if (sameEverywhere(error)) throw error;
      // This runtime's VM did not get as far as the command (it failed to boot, a transfer was
      // refused): recorded as its failure, and the other runtimes still run.
      const e = error as GvmiTestError;
      if (!json) printFailure(io, runtime, e);
      const run: RuntimeRun = { runtimeVersion: runtime, exitCode: null, signal: null, status: exitCodeFor(e.code), stdout: '', stderr: '', error: { code: e.code, message: e.message }, findings: [] };
      runs.push(run);
      records.push({ runtimeVersion: runtime, exitCode: null, signal: null, stdout: '', stderr: '', error: { code: e.code, message: e.message, hint: e.hint }, findings: [] });
    }
  }
  // The image Env explains output that differs without failing; the file was just read by the runs.
  const imageEnv = await readGvmi(plan.image).then((i) => i.metadata.env, () => []);
  const comparison = compareRuntimeRuns(runs, { imageEnv });
  if (json) writeLine(io.stdout, JSON.stringify(record({ runtimeVersion: 'all', runs: records, comparison })));
  else printComparison(io, runs, comparison);
  if (comparison.status !== 0) throw new ExitStatus(comparison.status);
}

/** As the CLI prints an error, marked with its runtime: the other runtimes' results follow. */
function printFailure(io: CliIo, runtime: RuntimeProfile, error: GvmiTestError): void {
  writeLine(io.stderr, `gvmi-test: [${runtime}] ${printable(error.message)} [${error.code}]`);
  if (error.hint) writeLine(io.stderr, `  hint: ${printable(error.hint)}`);
}

function printComparison(io: CliIo, runs: readonly RuntimeRun[], c: RuntimeComparison): void {
  const say = (line: string): void => writeLine(io.stderr, `gvmi-test: ${line}`);
  const same = (equal: boolean): string => (equal ? 'same' : 'differs');
  say('── comparison ──');
  for (const r of runs) {
    const codes = r.findings.map((f) => f.code);
    say(`  ${r.runtimeVersion}: ${describeOutcome(r)}${r.status === 0 ? '' : ' (fails)'}; findings: ${codes.length ? codes.join(', ') : 'none'}`);
  }
  say(`  exit status: ${same(c.sameStatus)}${c.sameStatus ? '' : ` (${runs.map((r) => `${r.runtimeVersion}: ${r.status}`).join(', ')})`}`);
  say(`  stdout: ${same(c.sameStdout)}`);
  say(`  stderr: ${same(c.sameStderr)}`);
  say(`verdict: ${printable(c.verdict)}`); // names the image's variables: escaped onto one line
}
