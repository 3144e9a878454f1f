/**
 * The gvmi-test command line. `runCli` builds a fresh program per call and returns the exit
 * status instead of exiting, so tests drive it in-process.
 */
import { Command, CommanderError } from 'commander';
import { GvmiTestError } from '../errors.js';
import { registerBuild } from './commands/build.js';
import { registerInspect } from './commands/inspect.js';
import { registerRun } from './commands/run.js';
import { registerDoctor } from './commands/doctor.js';
import { registerSetup } from './commands/setup.js';
import { registerServe } from './commands/serve.js';
import { registerExec } from './commands/exec.js';
import { registerShell } from './commands/shell.js';
import { registerStartEntrypoint } from './commands/start-entrypoint.js';
import { registerCache } from './commands/cache.js';
import { registerNetwork } from './commands/network.js';
import { EXIT, ExitStatus } from './exit-codes.js';
import { processIo, type CliIo } from './io.js';
import { reportError } from './report-error.js';
import { terminationStatus } from './termination.js';

/** The subcommand being run (set before it parses), so that an error can be reported as it asked. */
interface Invocation {
  command?: Command;
}

export function createProgram(io: CliIo, invocation: Invocation = {}): Command {
  const program = new Command('gvmi-test')
    .description('Boot a Golem .gvmi image under provider conditions: run, test, inspect, build.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // commander's own errors ("error: missing required argument …") are reported by runCli,
      // as every other error is: `gvmi-test: … [usage]`.
      outputError: () => {},
    })
    .hook('preSubcommand', (_program, command) => {
      invocation.command = command;
    })
    // The command whose action runs: for `network start` the leaf, whose options (--json) count.
    .hook('preAction', (_program, command) => {
      invocation.command = command;
    });
  registerBuild(program, io);
  registerInspect(program, io);
  registerRun(program, io);
  registerDoctor(program, io);
  registerSetup(program, io);
  registerServe(program, io);
  registerExec(program, io);
  registerShell(program, io);
  registerStartEntrypoint(program, io);
  registerCache(program, io);
  registerNetwork(program, io);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** commander's own error (a missing argument, an unknown option or command) as a usage error. */
function usageError(error: CommanderError, command: Command | undefined): GvmiTestError {
  const where = command ? `gvmi-test ${command.name()}` : 'gvmi-test';
  if (error.code === 'commander.help') {
    // No command: commander has printed the help (on stderr).
    return new GvmiTestError('usage', 'no command given', { hint: 'gvmi-test --help lists the commands' });
  }
  const message = error.message.replace(/^error: /, '');
  return new GvmiTestError('usage', command ? `${command.name()}: ${message}` : message, {
    hint: `${where} --help shows the usage`,
    details: { commander: error.code },
  });
}

export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const invocation: Invocation = {};
  const program = createProgram(io, invocation);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    // Ending on a signal or a closed output (src/cli/termination.ts): the VMs are being stopped,
    // and what failed because of it is no error to report.
    const ending = terminationStatus();
    if (ending !== undefined) return ending;
    if (error instanceof ExitStatus) return error.status;
    // Errors come out as the command asked: `--json` is the command's own option as parsed, never
    // a word of the guest command (`run img -- tool --json`).
    const json = invocation.command?.opts()['json'] === true;
    if (error instanceof CommanderError) {
      // help and version end here with exit code 0
      if (error.exitCode === 0) return EXIT.ok;
      return reportError(usageError(error, invocation.command), io, json);
    }
    return reportError(error, io, json);
  }
}
