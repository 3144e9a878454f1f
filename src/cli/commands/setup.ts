import type { Command } from 'commander';
import { createInterface } from 'node:readline/promises';
import { writeLine, type CliIo } from '../io.js';
import { printable } from '../../terminal-safe.js';

export function registerSetup(program: Command, io: CliIo): void {
  program
    .command('setup')
    .description('install what npm cannot (QEMU, squashfs-tools) through the system package manager, then check the guest runtime boots')
    .option('-y, --yes', 'install without asking (for CI); without a terminal and without --yes, nothing is installed and the command is printed')
    .option('--json', 'print what was done as JSON')
    .action(async (flags: { yes?: boolean; json?: boolean }) => {
      const { onPath, runSetup } = await import('../../setup/run-setup.js');
      const report = await runSetup({
        facts: {
          platform: process.platform,
          has: (binary) => onPath(binary),
          uid: process.getuid?.() ?? -1,
          interactive: Boolean(io.stdin.isTTY && io.stdout.isTTY),
          yes: flags.yes === true,
        },
        ask: async (question) => {
          const rl = createInterface({ input: io.stdin, output: io.stderr });
          try {
            return /^y(es)?$/i.test((await rl.question(question)).trim());
          } finally {
            rl.close();
          }
        },
        runCommand: async (argv, env) => {
          // Its output goes to stderr: stdout is this command's result (--json).
          // Loaded here: execa costs ~0.1 s of start-up, which every other command would pay.
          const { execa } = await import('execa');
          const child = execa(argv[0]!, argv.slice(1), { reject: false, env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', buffer: false });
          child.stdout?.pipe(io.stderr, { end: false });
          child.stderr?.pipe(io.stderr, { end: false });
          const result = await child;
          return result.exitCode ?? 127;
        },
        hasNow: (binary) => onPath(binary),
        // Loaded when needed: a host without QEMU hears about that first.
        findRuntime: async () => (await import('../../qemu/runtime-files.js')).findRuntime(),
        proveRuntime: async () => (await import('../../setup/verify-runtime.js')).proveRuntimeBoots(),
        say: (line) => { if (!flags.json) writeLine(io.stderr, line); },
      });
      if (flags.json) {
        writeLine(io.stdout, JSON.stringify(report, null, 2));
        return;
      }
      writeLine(io.stdout, report.installed
        ? `installed: ${report.installed.packages.join(' ')} (${printable(report.installed.command)})`
        : 'installed: nothing (QEMU and squashfs-tools were already there)');
      writeLine(io.stdout, `runtime:   kernel ${report.runtime.kernelHash}, init ${report.runtime.initHash} (${report.runtime.source}: ${printable(report.runtime.kernel)})`);
      writeLine(io.stdout, `boot:      the guest agent answered after ${report.boot.bootMs} ms under ${report.boot.accelerator.toUpperCase()}`);
      writeLine(io.stdout, '\ngvmi-test is ready: gvmi-test run IMAGE.gvmi -- COMMAND');
    });
}
