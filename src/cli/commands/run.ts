/** `gvmi-test run`: parses the command line; one run is run-under.ts, `--runtime-version all` run-every-runtime.ts. */
import type { Command } from 'commander';
import { GvmiTestError } from '../../errors.js';
import { ExitStatus } from '../exit-codes.js';
import { reportError } from '../report-error.js';
import { writeLine, type CliIo } from '../io.js';
import { collect, parsePositiveInt } from '../options.js';
import { optionsEndAtGuestCommand } from '../guest-command.js';
import { parseRuntimeChoice } from '../runtime-option.js';
import { imagePathFor, withEngineImage } from '../image-argument.js';
import { findHostScript, hostScriptFile } from '../../requestor/host-script.js';
import { runUnder, StdinFeed, type RunFlags, type RunPlan } from '../run-under.js';
import { addVmOptions } from '../vm-options.js';

export function registerRun(program: Command, io: CliIo): void {
  const run = addVmOptions(program
    .command('run')
    .description('run a command in the image as a requestor would, and exit with its status')
    .argument('<image>', 'the .gvmi file, or IMAGE[:TAG] of the local Docker or Podman engine (converted once, cached)')
    .argument('[command...]', 'the command (`--` before it is optional: every word from its first on is the command\'s), or a host script to upload and run')
    .option('--input <HOSTPATH[:GUESTPATH]>', 'copy a host file into a volume first (default: the first volume; GUESTPATH ending in / is a directory to put it in) (repeatable)', collect, [])
    .option('--script <HOSTPATH>', 'upload this host file into the first volume and run it (the command words are its arguments); without it only a relative path to a host file is uploaded, and an absolute path is the image\'s')
    .option('--output <HOSTDIR>', 'after the run, copy every volume to HOSTDIR/<volume path> (under --runtime-version all: HOSTDIR/<runtime>/<volume path>)')
    .option('--timeout <seconds>', 'kill the command (and fail) after this long')
    .option('--no-stdin', 'do not forward a piped stdin to the command (the command gets an empty stdin, as on a provider)')
    .option('--report', 'after the run, print overlay and volume usage')
    .option('-q, --quiet', "print only the command's own output (no gvmi-test warnings)")
    .option('--json', 'print one JSON result object instead of streaming output'), { compare: true });
  // `run img /bin/echo --timeout 5`: the options after the command's first word are the command's.
  optionsEndAtGuestCommand(run, 1);
  run.action(async (image: string, command: string[], flags: RunFlags) => {
    // Checked before anything boots: a typo fails at once.
    const choice = parseRuntimeChoice(flags.runtimeVersion);
    if (command.length === 0 && !flags.script) {
      throw new GvmiTestError('usage', 'run: no command given', { hint: 'gvmi-test run IMAGE -- /bin/ls -l /   (or --script ./job.sh)' });
    }
    const resolved = await imagePathFor(image, io, flags);
    const plan: RunPlan = {
      image: resolved.path, command, flags, io,
      timeoutMs: flags.timeout ? parsePositiveInt(flags.timeout, '--timeout') * 1000 : undefined,
      script: flags.script !== undefined ? await hostScriptFile(flags.script, `--script ${flags.script}`) : command[0] ? await findHostScript(command[0]) : undefined,
      // As `docker run -i`: a pipe or a file is the command's stdin; a terminal is not read.
      stdin: flags.stdin !== false && !io.stdin.isTTY ? new StdinFeed(io.stdin, choice.kind === 'all') : undefined,
    };
    if (choice.kind === 'all') {
      const { runEveryRuntime } = await import('../run-every-runtime.js');
      await runEveryRuntime(plan, choice.profiles, (result) => withEngineImage(result, resolved));
      return;
    }
    const outcome = await runUnder(plan, choice.profile);
    if (flags.json) writeLine(io.stdout, JSON.stringify(withEngineImage(outcome.record, resolved)));
    if (outcome.failure) {
      if (!flags.json) throw outcome.failure;
      // The record above has what the command printed before it was killed; the error line
      // still goes to stderr, and the status is the error's.
      throw new ExitStatus(reportError(outcome.failure, io));
    }
    if (outcome.run.status !== 0) throw new ExitStatus(outcome.run.status);
  });
}
