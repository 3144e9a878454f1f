import type { Command } from 'commander';

/**
 * `args` with `--` put before the guest command's first word, so that everything from there on
 * is the guest's: `run img /bin/echo --timeout 5` runs `echo --timeout 5`, as `-- /bin/echo
 * --timeout 5` does. `leading` operands come before the command (run: the image). Options of
 * `command` before that word are skipped with their values; unknown ones are left for commander
 * to refuse; an explicit `--` ends the scan.
 */
export function endOptionsAtGuestCommand(command: Command, args: readonly string[], leading: number): string[] {
  let operands = 0;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg.length > 1 && arg.startsWith('-')) {
      const option = command.options.find((o) => o.long === arg || o.short === arg);
      if (option?.required) i++; // its value, whatever it looks like
      else if (option?.optional && i + 1 < args.length && !args[i + 1]!.startsWith('-')) i++;
      continue;
    }
    if (operands === leading) return [...args.slice(0, i), '--', ...args.slice(i)];
    operands++;
  }
  return [...args];
}

/**
 * Makes `command` stop parsing its options at the guest command's first word (see
 * endOptionsAtGuestCommand). Its parent must then leave the words after the subcommand's name to
 * it (positional options): gvmi-test's own options all belong to subcommands.
 */
export function optionsEndAtGuestCommand<C extends Command>(command: C, leading: number): C {
  command.parent?.enablePositionalOptions();
  const parse = command.parseOptions.bind(command);
  command.parseOptions = (args: string[]) => parse(endOptionsAtGuestCommand(command, args, leading));
  return command;
}
