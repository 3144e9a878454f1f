/**
 * How the CLI reports an error: for runCli, and for a command that has printed its result and
 * still fails (run --json). Not in program.ts: commands use it, and program.ts imports commands.
 */
import { GvmiTestError } from '../errors.js';
import { printable } from '../terminal-safe.js';
import { exitCodeFor } from './exit-codes.js';
import { writeLine, type CliIo } from './io.js';

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
