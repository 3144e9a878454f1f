import type { Command } from 'commander';
import { EXIT, ExitStatus } from '../exit-codes.js';
import { writeLine, type CliIo } from '../io.js';
import { printable } from '../../terminal-safe.js';

export function registerDoctor(program: Command, io: CliIo): void {
  program
    .command('doctor')
    .description('check that this machine can run images, and say how to fix what is missing')
    .option('--json', 'print the checks as JSON')
    .action(async (flags: { json?: boolean }) => {
      const { runDoctor } = await import('../../diagnostics/doctor.js');
      const report = await runDoctor();
      if (flags.json) {
        writeLine(io.stdout, JSON.stringify(report, null, 2));
      } else {
        for (const c of report.checks) {
          // Details quote tools' output and error messages (paths, versions): one line each.
          writeLine(io.stdout, `${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'}  ${c.name}: ${printable(c.detail)}`);
          if (c.fix) writeLine(io.stdout, `      fix: ${printable(c.fix)}`);
        }
        writeLine(io.stdout, report.canRun ? '\ngvmi-test run can work here.' : '\ngvmi-test run cannot work here until the FAIL lines are fixed.');
      }
      if (!report.canRun) throw new ExitStatus(EXIT.setup);
    });
}
