/**
 * `gvmi-test start-entrypoint image.gvmi`: what a requestor's `start-entrypoint` does on a
 * provider — the image's Entrypoint + Cmd as one process (BIN as written, no PATH search; argv[0]
 * its file name; the image Env and WORKDIR). Its output streams here; its exit status is ours.
 * On a provider the VM runs on after it exits (the runtime does not flag it as the entrypoint);
 * here the VM stops with it.
 */
import type { Command } from 'commander';
import { formatFinding } from '../../diagnostics/finding.js';
import { extraVolumeFinding } from '../../diagnostics/run-findings.js';
import { shellStatus } from '../../signals.js';
import { ExitStatus } from '../exit-codes.js';
import { writeLine, type CliIo } from '../io.js';
import { addVmOptions, runtimeFromFlags, startVmFromFlags, type VmFlags } from '../vm-options.js';
import { imagePathFor } from '../image-argument.js';

interface StartEntrypointFlags extends VmFlags {
  quiet?: boolean;
}

export function registerStartEntrypoint(program: Command, io: CliIo): void {
  addVmOptions(program
    .command('start-entrypoint')
    .description("run the image's ENTRYPOINT + CMD as a requestor's start-entrypoint does, and exit with its status")
    .argument('<image>', 'the .gvmi file, or IMAGE[:TAG] of the local Docker or Podman engine')
    .option('-q, --quiet', "print only the entrypoint's own output (no gvmi-test notes)"))
    .action(async (image: string, flags: StartEntrypointFlags) => {
      await using vm = await startVmFromFlags((await imagePathFor(image, io, flags)).path, flags, runtimeFromFlags(flags, 'start-entrypoint'), io, { quiet: flags.quiet ?? false });
      // --volume at a path the image does not declare: no provider mounts it.
      const extraVolumes = extraVolumeFinding(vm.volumes.map((v) => v.guestPath), vm.info.metadata.volumes);
      if (extraVolumes && !flags.quiet) writeLine(io.stderr, `gvmi-test: ${formatFinding(extraVolumes)}`);
      const process = await vm.startEntrypoint({ maxBuffer: 0 });
      process.on('stdout', (d: Buffer) => io.stdout.write(d));
      process.on('stderr', (d: Buffer) => io.stderr.write(d));
      const result = await process.wait();
      if (!flags.quiet) {
        for (const f of await vm.diagnose(result)) writeLine(io.stderr, `gvmi-test: ${formatFinding(f)}`);
        writeLine(io.stderr, 'gvmi-test: the entrypoint exited; on a provider the VM runs on until the requestor stops the activity');
      }
      const status = shellStatus(result);
      if (status !== 0) throw new ExitStatus(status);
    });
}
