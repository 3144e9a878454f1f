import type { Command } from 'commander';
import { GvmiTestError } from '../../errors.js';
import { execTimeoutError } from '../../vm/process-runner.js';
import { shellStatus } from '../../signals.js';
import { ExitStatus } from '../exit-codes.js';
import { guestArgv } from '../../requestor/guest-command.js';
import { optionsEndAtGuestCommand } from '../guest-command.js';
import type { CliIo } from '../io.js';
import { collect, parseKeyValue, parsePositiveInt } from '../options.js';
import { CONNECT_ENV, resolveConnectUrl } from '../served-url.js';
import { divertSignals, onTermination } from '../termination.js';

interface ExecFlags {
  connect?: string;
  connectFile?: string;
  env: string[];
  workdir?: string;
  timeout?: string;
}

export function registerExec(program: Command, io: CliIo): void {
  // As `run`: everything from the command's first word on is the command's (`exec /bin/echo --timeout 5`).
  optionsEndAtGuestCommand(program
    .command('exec')
    .description('run a command in a VM served by `gvmi-test serve`, streaming its output; exits with its status')
    .option('--connect <source>', `- : read the URL \`gvmi-test serve\` printed from stdin (a URL here is refused: ps shows argv to everyone; or set ${CONNECT_ENV})`)
    .option('--connect-file <path>', 'read the URL from this file (mode 0600, yours; `serve --url-file` writes it)')
    .option('--env <KEY=VALUE>', 'add to the image Env (repeatable)', collect, [])
    .option('--workdir <path>', 'working directory (default: the image WORKDIR)')
    .option('--timeout <seconds>', 'kill the command (and fail) after this long')
    .argument('<command...>', 'after --: the command and its arguments')
    .action(async (command: string[], flags: ExecFlags) => {
      const url = await resolveConnectUrl({ connect: flags.connect, connectFile: flags.connectFile, stdin: io.stdin });
      const { connectVm } = await import('../../server/ws-client.js');
      const vm = await connectVm(url);
      // Ended by a signal or a closed output: disconnecting ends the command (a served VM kills
      // the processes of a client that leaves) before the process exits.
      const unregister = onTermination(() => vm.stop());
      try {
        const p = await vm.spawn(guestArgv(command), {
          env: Object.fromEntries(flags.env.map((e) => parseKeyValue(e, '--env'))),
          ...(flags.workdir ? { cwd: flags.workdir } : {}),
          ...(flags.timeout ? { timeoutMs: parsePositiveInt(flags.timeout, '--timeout') * 1000 } : {}),
          maxBuffer: 0,
        });
        p.on('stdout', (d) => io.stdout.write(d));
        p.on('stderr', (d) => io.stderr.write(d));
        // Ctrl-C goes to the command, as to a local one: exec ends when the command does.
        const restore = divertSignals(['SIGINT'], () => void p.kill('SIGINT').catch(() => {}));
        const r = await p.wait().finally(restore);
        if (r.timedOut) throw execTimeoutError(command, `${flags.timeout} s`);
        const status = shellStatus(r);
        if (status !== 0) throw new ExitStatus(status);
      } finally {
        unregister();
        await vm.stop();
      }
    }), 0);
}
