import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { GvmiTestError } from '../../errors.js';
import type { GuestProcess } from '../../vm/guest-process.js';
import { writeLine, type CliIo } from '../io.js';
import { addVmOptions, startVmFromFlags, type VmFlags } from './run.js';

interface ShellFlags extends VmFlags {
  tty?: boolean;
}

const PROMPT = 'golem ▶ ';

export function registerShell(program: Command, io: CliIo): void {
  addVmOptions(program
    .command('shell')
    .description('an interactive session in the image: each line runs as /bin/sh -c <line> (Ctrl-C interrupts it, Ctrl-D quits)')
    .argument('<image>', 'the .gvmi file')
    .option('--tty', 'a real terminal in the guest (not available yet)'))
    .action(async (image: string, flags: ShellFlags) => {
      if (flags.tty) {
        throw new GvmiTestError('usage', '--tty is not available yet: the guest agent has no pty support', { hint: 'run full-screen programs with gvmi-test run, or use the line-based shell' });
      }
      await using vm = await startVmFromFlags(image, flags, io);
      const interactive = Boolean(io.stdin.isTTY);
      writeLine(io.stderr, `gvmi-test shell: ${vm.info.accelerator.reason}, booted in ${vm.info.bootMs} ms`);
      for (const v of vm.volumes) writeLine(io.stderr, `  volume ${v.guestPath} -> ${v.hostPath}`);
      const shadowing = vm.shadowingFinding();
      if (shadowing) writeLine(io.stderr, `  note: ${shadowing.paths!.length} file(s) baked under volumes are hidden (${shadowing.paths!.slice(0, 3).join(', ')})`);
      writeLine(io.stderr, interactive ? '  each line runs as /bin/sh -c <line>; Ctrl-C interrupts it, Ctrl-D shuts the VM down' : '');

      const rl = createInterface({ input: io.stdin, output: io.stdout, prompt: PROMPT, terminal: interactive });
      let running: GuestProcess | undefined;
      rl.on('SIGINT', () => {
        if (running) void running.kill('SIGINT').catch(() => {});
        else {
          io.stdout.write('^C\n');
          rl.prompt();
        }
      });
      if (interactive) rl.prompt();
      for await (const line of rl) {
        if (line.trim() !== '') {
          try {
            running = await vm.spawn(['/bin/sh', '-c', line], { maxBuffer: 0 });
            running.on('stdout', (d) => io.stdout.write(d));
            running.on('stderr', (d) => io.stderr.write(d));
            const r = await running.wait();
            if (r.exitCode !== 0) writeLine(io.stderr, r.signal ? `command killed by ${r.signal}` : `command failed with code ${r.exitCode}`);
          } catch (error) {
            if (error instanceof GvmiTestError && (error.code === 'vm.crashed' || error.code === 'vm.stopped')) throw error;
            writeLine(io.stderr, error instanceof Error ? error.message : String(error));
          } finally {
            running = undefined;
          }
        }
        if (interactive) rl.prompt();
      }
      if (interactive) io.stdout.write('\n');
      writeLine(io.stderr, 'gvmi-test shell: shutting down');
    });
}
