import type { Command } from 'commander';
import { writeLine, type CliIo } from '../io.js';
import { addVmOptions, runtimeFromFlags, startVmFromFlags, type VmFlags } from '../vm-options.js';
import { networkRecordOf } from '../vm-network-options.js';
import { parsePositiveInt } from '../options.js';
import { writeUrlFile } from '../served-url.js';
import { imagePathFor } from '../image-argument.js';
import { divertSignals, onTermination, TERMINATION_SIGNALS } from '../termination.js';

interface ServeFlags extends VmFlags {
  host: string;
  port: string;
  json?: boolean;
  urlFile?: string;
  maxTransferMib: string;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function registerServe(program: Command, io: CliIo): void {
  addVmOptions(program
    .command('serve')
    .description('boot the image and serve the VM over WebSocket until Ctrl-C or a stop request (docs/ws-protocol.md)')
    .argument('<image>', 'the .gvmi file, or IMAGE[:TAG] of the local Docker or Podman engine')
    .option('--host <address>', 'address to bind (loopback unless you say otherwise)', '127.0.0.1')
    .option('--port <n>', 'port (0: any free port)', '0')
    .option('--url-file <path>', 'write the URL (with its token) to this new file, mode 0600, removed when serving stops; it is then not printed (`exec --connect-file` reads it)')
    .option('--max-transfer-mib <n>', 'largest file a client may download or upload, in MiB', '4096')
    .option('--json', 'print the address as one JSON line'))
    .action(async (image: string, flags: ServeFlags) => {
      const port = flags.port === '0' ? 0 : parsePositiveInt(flags.port, '--port');
      const maxTransferBytes = parsePositiveInt(flags.maxTransferMib, '--max-transfer-mib') * 1024 * 1024;
      const runtimeVersion = runtimeFromFlags(flags, 'serve');
      if (!LOOPBACK.has(flags.host)) {
        writeLine(io.stderr, `gvmi-test: WARNING: serving on ${flags.host}, not loopback: anyone who can reach this address and has the token can run commands in the VM`);
      }
      const vm = await startVmFromFlags((await imagePathFor(image, io)).path, flags, runtimeVersion, io);
      let server;
      let removeUrlFile = async (): Promise<void> => {};
      try {
        const { serveVm } = await import('../../server/ws-server.js');
        server = await serveVm(vm, { host: flags.host, port, maxTransferBytes });
        if (flags.urlFile) {
          removeUrlFile = await writeUrlFile(flags.urlFile, server.url);
          onTermination(removeUrlFile); // a signal before serving starts (below) removes it too
        }
      } catch (error) {
        await server?.close();
        await vm.stop();
        throw error;
      }
      // With --url-file the token goes to that file only: stdout may end up in a log others read.
      const where = flags.urlFile ? { urlFile: flags.urlFile } : { url: server.url, token: server.token };
      if (flags.json) {
        writeLine(io.stdout, JSON.stringify({ ...where, host: server.host, port: server.port, runtimeVersion: vm.info.runtimeVersion, volumes: vm.volumes.map((v) => ({ guest: v.guestPath, host: v.hostPath })), ...networkRecordOf(vm) }));
      } else {
        if (flags.urlFile) writeLine(io.stderr, `gvmi-test: URL written to ${flags.urlFile} (gvmi-test exec --connect-file ${flags.urlFile} -- …)`);
        else writeLine(io.stdout, server.url);
        writeLine(io.stderr, `gvmi-test: runtime ${vm.info.runtimeVersion}`);
        for (const v of vm.volumes) writeLine(io.stderr, `gvmi-test: volume ${v.guestPath} -> ${v.hostPath}`);
        writeLine(io.stderr, 'gvmi-test: serving; Ctrl-C stops the VM');
      }
      // SIGINT, SIGTERM or SIGHUP ends serving in serve's own order (URL file, server, VM), with
      // status 0; a second signal stops the VM and exits 128+N (src/cli/termination.ts).
      let restore = (): void => {};
      const interrupted = new Promise<void>((resolve) => {
        restore = divertSignals(TERMINATION_SIGNALS, () => {
          restore();
          resolve();
        });
      });
      try {
        await Promise.race([interrupted, server.stopRequested]);
      } finally {
        restore();
        await removeUrlFile();
        await server.close();
        await vm.stop();
      }
      if (!flags.json) writeLine(io.stderr, 'gvmi-test: stopped');
    });
}
