import type { Command } from 'commander';
import { writeLine, type CliIo } from '../io.js';
import { addVmOptions, startVmFromFlags, type VmFlags } from './run.js';
import { parsePositiveInt } from '../options.js';

interface ServeFlags extends VmFlags {
  host: string;
  port: string;
  json?: boolean;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function registerServe(program: Command, io: CliIo): void {
  addVmOptions(program
    .command('serve')
    .description('boot the image and serve the VM over WebSocket until Ctrl-C or a stop request (docs/ws-protocol.md)')
    .argument('<image>', 'the .gvmi file')
    .option('--host <address>', 'address to bind (loopback unless you say otherwise)', '127.0.0.1')
    .option('--port <n>', 'port (0: any free port)', '0')
    .option('--json', 'print the address as one JSON line'))
    .action(async (image: string, flags: ServeFlags) => {
      const port = flags.port === '0' ? 0 : parsePositiveInt(flags.port, '--port');
      if (!LOOPBACK.has(flags.host)) {
        writeLine(io.stderr, `gvmi-test: WARNING: serving on ${flags.host}, not loopback: anyone who can reach this address and has the token can run commands in the VM`);
      }
      const vm = await startVmFromFlags(image, flags);
      let server;
      try {
        const { serveVm } = await import('../../server/ws-server.js');
        server = await serveVm(vm, { host: flags.host, port });
      } catch (error) {
        await vm.stop();
        throw error;
      }
      if (flags.json) {
        writeLine(io.stdout, JSON.stringify({ url: server.url, host: server.host, port: server.port, token: server.token, volumes: vm.volumes.map((v) => ({ guest: v.guestPath, host: v.hostPath })) }));
      } else {
        writeLine(io.stdout, server.url);
        for (const v of vm.volumes) writeLine(io.stderr, `gvmi-test: volume ${v.guestPath} -> ${v.hostPath}`);
        writeLine(io.stderr, 'gvmi-test: serving; Ctrl-C stops the VM');
      }
      const interrupted = new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await Promise.race([interrupted, server.stopRequested]);
      await server.close();
      await vm.stop();
      if (!flags.json) writeLine(io.stderr, 'gvmi-test: stopped');
    });
}
