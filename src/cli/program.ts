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
import { registerServe } from './commands/serve.js';
import { registerExec } from './commands/exec.js';
import { registerShell } from './commands/shell.js';
import { registerStartEntrypoint } from './commands/start-entrypoint.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { processIo, writeLine, type CliIo } from './io.js';
import { printable } from '../terminal-safe.js';
import { terminationStatus } from './termination.js';

/** Thrown by a command that has printed its result and wants a specific exit status. */
export class ExitStatus {
  constructor(readonly status: number) {}
}

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
    });
  registerBuild(program, io);
  registerInspect(program, io);
  registerRun(program, io);
  registerDoctor(program, io);
  registerServe(program, io);
  registerExec(program, io);
  registerShell(program, io);
  registerStartEntrypoint(program, io);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/**
 * The one way the CLI reports an error: `gvmi-test: MESSAGE [CODE]` on stderr, a hint line when
 * there is one, the guest console's tail when there is one; with `json`, also one
 * `{"error": …}` object on stdout. Returns the exit status of the error's code.
 */
export function reportError(error: unknown, io: CliIo, json = false): number {
  const e = error instanceof GvmiTestError
    ? error
    : new GvmiTestError('internal', `internal error: ${error instanceof Error ? error.message : String(error)}`, {
      hint: 'this is a bug in gvmi-test: please report it with the lines below',
      details: { stack: error instanceof Error ? error.stack : undefined },
    });
  if (json) {
    writeLine(io.stdout, JSON.stringify({ error: { code: e.code, message: e.message, hint: e.hint, details: e.details } }));
  }
  // Messages quote image- and guest-chosen text (paths, commands, console lines): escaped, so an
  // error stays the one line it promises to be and nothing in it reaches the terminal raw.
  writeLine(io.stderr, `gvmi-test: ${printable(e.message)} [${e.code}]`);
  if (e.hint) writeLine(io.stderr, `  hint: ${printable(e.hint)}`);
  const consoleTail = e.details?.['consoleTail'];
  if (typeof consoleTail === 'string' && consoleTail.trim()) {
    writeLine(io.stderr, '  guest console (last lines):');
    // The serial console ends lines with \r\n; any other \r is the guest's and is shown.
    for (const line of consoleTail.trimEnd().split(/\r?\n/)) writeLine(io.stderr, `    ${printable(line)}`);
  }
  const stack = e.code === 'internal' ? e.details?.['stack'] : undefined;
  if (typeof stack === 'string') for (const line of stack.split('\n').slice(1)) writeLine(io.stderr, `    ${printable(line.trim())}`);
  return exitCodeFor(e.code);
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
