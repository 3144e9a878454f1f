import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { GvmiTestError } from '../../errors.js';
import type { GuestProcess } from '../../vm/guest-process.js';
import type { StartedVm } from '../../vm/started-vm.js';
import { writeLine, type CliIo } from '../io.js';
import { printable } from '../../terminal-safe.js';
import { onTermination } from '../termination.js';
import { reportError } from '../report-error.js';
import { addVmOptions, runtimeFromFlags, startVmFromFlags, type VmFlags } from '../vm-options.js';
import { imagePathFor } from '../image-argument.js';

type TtyStream = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
type TtyOut = NodeJS.WritableStream & { rows?: number; columns?: number };

/** `shell --tty`: the guest's own interactive shell on a pseudo-terminal, keys passed raw. */
async function terminalSession(vm: StartedVm, io: CliIo): Promise<void> {
  const out = io.stdout as TtyOut;
  const input = io.stdin as TtyStream;
  for (const v of vm.volumes) writeLine(io.stderr, `gvmi-test shell: volume ${printable(v.guestPath)} -> ${printable(v.hostPath)}`);
  const size = (): { rows: number; cols: number } => ({ rows: out.rows ?? 24, cols: out.columns ?? 80 });
  const p = await vm.spawn(['/bin/sh', '-c', 'if [ -x /bin/bash ]; then exec /bin/bash -i; else exec /bin/sh -i; fi'], {
    pty: size(), maxBuffer: 0, env: { TERM: process.env['TERM'] ?? 'xterm' },
  });
  p.on('stdout', (d) => out.write(d));
  const onKeys = (d: Buffer | string): void => void p.write(typeof d === 'string' ? Buffer.from(d) : d).catch(() => {});
  const onResize = (): void => void p.resize(size().rows, size().cols).catch(() => {});
  input.setRawMode?.(true);
  // Ended by a signal (src/cli/termination.ts): the terminal gets its line discipline back.
  const unregister = onTermination(async () => void input.setRawMode?.(false));
  input.on('data', onKeys);
  input.resume();
  (out as unknown as NodeJS.EventEmitter).on?.('resize', onResize);
  try {
    await p.wait();
  } finally {
    input.off('data', onKeys);
    (out as unknown as NodeJS.EventEmitter).off?.('resize', onResize);
    input.setRawMode?.(false);
    unregister();
    input.pause();
  }
  io.stderr.write('\r\n'); // the guest may have left the cursor mid-line (writeLine would show the \r)
  writeLine(io.stderr, 'gvmi-test shell: shutting down');
}

/**
 * `--tty` passes keys raw to a guest shell that draws on our terminal and asks it where the cursor
 * is (ESC[6n): without a terminal on both ends nothing ever answers, and the session would hang.
 */
function requireTerminal(io: CliIo): void {
  const missing = [!io.stdin.isTTY && 'stdin', !io.stdout.isTTY && 'stdout'].filter(Boolean);
  if (missing.length === 0) return;
  throw new GvmiTestError('usage', `shell --tty needs a terminal, and ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not one`, {
    hint: 'run it in a terminal, or leave out --tty: `gvmi-test shell IMAGE` reads command lines from a pipe or a file too',
  });
}

interface ShellFlags extends VmFlags {
  tty?: boolean;
}

const PROMPT = 'golem ▶ ';

export function registerShell(program: Command, io: CliIo): void {
  addVmOptions(program
    .command('shell')
    .description('an interactive session in the image: each line runs as /bin/sh -c <line> (Ctrl-C interrupts it, Ctrl-D quits)')
    .argument('<image>', 'the .gvmi file, or IMAGE[:TAG] of the local Docker or Podman engine')
    .option('--tty', 'a real terminal in the guest (a pty): vi, top, job control work'))
    .action(async (image: string, flags: ShellFlags) => {
      if (flags.tty) requireTerminal(io);
      await using vm = await startVmFromFlags((await imagePathFor(image, io)).path, flags, runtimeFromFlags(flags, 'shell'), io);
      if (flags.tty) {
        await terminalSession(vm, io);
        return;
      }
      const interactive = Boolean(io.stdin.isTTY);
      writeLine(io.stderr, `gvmi-test shell: ${vm.info.accelerator.reason}, ${vm.info.snapshot.use === 'restored' ? 'restored from a snapshot' : 'booted'} in ${vm.info.bootMs} ms, runtime ${vm.info.runtimeVersion}`);
      if (vm.info.runtimeVersion === '0.5' && vm.info.metadata.env.length > 0) {
        // The trap of this runtime, said before the first command runs into it.
        writeLine(io.stderr, `  note: runtime 0.5 gives every command an EMPTY environment: the image Env (${vm.info.metadata.env.map((e) => printable(e.split('=', 1)[0]!)).join(', ')}) is not set`);
      }
      // Volume paths and file names are the image's: escaped.
      for (const v of vm.volumes) writeLine(io.stderr, `  volume ${printable(v.guestPath)} -> ${printable(v.hostPath)}`);
      const shadowing = vm.shadowingFinding();
      if (shadowing) writeLine(io.stderr, `  note: ${shadowing.paths!.length} file(s) baked under volumes are hidden (${shadowing.paths!.slice(0, 3).map(printable).join(', ')})`);
      writeLine(io.stderr, interactive ? '  each line runs as /bin/sh -c <line>; Ctrl-C interrupts it, Ctrl-D shuts the VM down' : '');

      const rl = createInterface({ input: io.stdin, output: io.stdout, prompt: PROMPT, terminal: interactive });
      let running: GuestProcess | undefined;
      let starting = false; // a line was entered and its process is being started
      let interruptPending = false;
      rl.on('SIGINT', () => {
        if (running) void running.kill('SIGINT').catch(() => {});
        else if (starting) interruptPending = true; // delivered as soon as the process exists
        else {
          io.stdout.write('^C\n');
          rl.prompt();
        }
      });
      if (interactive) rl.prompt();
      for await (const line of rl) {
        if (line.trim() !== '') {
          try {
            starting = true;
            interruptPending = false;
            running = await vm.spawn(['/bin/sh', '-c', line], { maxBuffer: 0 });
            starting = false;
            if (interruptPending) void running.kill('SIGINT').catch(() => {});
            running.on('stdout', (d) => io.stdout.write(d));
            running.on('stderr', (d) => io.stderr.write(d));
            const r = await running.wait();
            if (r.exitCode !== 0) writeLine(io.stderr, r.signal ? `command killed by ${r.signal}` : `command failed with code ${r.exitCode}`);
          } catch (error) {
            if (error instanceof GvmiTestError && (error.code === 'vm.crashed' || error.code === 'vm.stopped')) throw error;
            reportError(error, io); // as every CLI error is shown; the session goes on
          } finally {
            running = undefined;
            starting = false;
          }
        }
        if (interactive) rl.prompt();
      }
      if (interactive) io.stdout.write('\n');
      writeLine(io.stderr, 'gvmi-test shell: shutting down');
    });
}
