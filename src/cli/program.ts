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

/** Thrown by a command that has printed its result and wants a specific exit status. */
export class ExitStatus {
  constructor(readonly status: number) {}
}

export function createProgram(io: CliIo): Command {
  const program = new Command('gvmi-test')
    .description('Boot a Golem .gvmi image under provider conditions: run, test, inspect, build.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError('(run gvmi-test --help for usage)');
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

export function reportError(error: unknown, io: CliIo, json = false): number {
  if (error instanceof GvmiTestError) {
    if (json) {
      writeLine(io.stdout, JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint, details: error.details } }));
    }
    // Messages quote image- and guest-chosen text (paths, commands, console lines): escaped, so an
    // error stays the one line it promises to be and nothing in it reaches the terminal raw.
    writeLine(io.stderr, `gvmi-test: ${printable(error.message)} [${error.code}]`);
    if (error.hint) writeLine(io.stderr, `  hint: ${printable(error.hint)}`);
    const consoleTail = error.details?.['consoleTail'];
    if (typeof consoleTail === 'string' && consoleTail.trim()) {
      writeLine(io.stderr, '  guest console (last lines):');
      // The serial console ends lines with \r\n; any other \r is the guest's and is shown.
      for (const line of consoleTail.trimEnd().split(/\r?\n/)) writeLine(io.stderr, `    ${printable(line)}`);
    }
    return exitCodeFor(error.code);
  }
  writeLine(io.stderr, `gvmi-test: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return EXIT.failure;
}

export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = createProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof ExitStatus) return error.status;
    if (error instanceof CommanderError) {
      // help and version end here with exit code 0; usage errors were already printed
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return reportError(error, io, argv.includes('--json'));
  }
}
