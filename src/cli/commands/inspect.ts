import type { Command } from 'commander';
import { formatBytes, writeLine, type CliIo } from '../io.js';
import { formatFinding } from '../../diagnostics/finding.js';
import { printable } from '../../terminal-safe.js';
import { imagePathFor, withEngineImage } from '../image-argument.js';

const MAX_LISTED = 20;

export function registerInspect(program: Command, io: CliIo): void {
  program
    .command('inspect')
    .description('show a .gvmi\'s metadata, sizes and what will surprise you on a provider')
    .argument('<image>', 'the .gvmi file, or IMAGE[:TAG] of the local Docker or Podman engine (converted once, cached)')
    .option('--json', 'print everything as one JSON object')
    .option('--verify', 'also read every block of the squashfs (a damaged image fails with image.corrupt)')
    .action(async (argument: string, flags: { json?: boolean; verify?: boolean }) => {
      const { inspectImage } = await import('../../image/inspect-image.js');
      const resolved = await imagePathFor(argument, io);
      const result = await inspectImage(resolved.path, { verify: flags.verify ?? false });
      const { image } = result;
      if (flags.json) {
        writeLine(io.stdout, JSON.stringify(withEngineImage({
          path: image.path,
          fileSize: image.fileSize,
          squashfs: { size: image.squashfsSize, ...image.squashfs },
          entries: result.entryCount,
          config: image.config,
          metadata: image.metadata,
          shadowed: result.shadowed.map((e) => e.path),
          findings: result.findings,
          ...(result.verified ? { verified: result.verified } : {}),
        }, resolved), null, 2));
        return;
      }
      // Every field below is chosen by whoever built the image: escaped, so that none can clear
      // the screen or fake a line (such as "no provider traps found").
      const m = image.metadata;
      const out = (line = ''): void => writeLine(io.stdout, line);
      const list = (items: readonly string[]): string => (items.length ? items.map(printable).join(' ') : '(none)');
      out(`${printable(image.path)}`);
      out(`  size        ${formatBytes(image.fileSize)} (squashfs ${formatBytes(image.squashfsSize)}, ${image.squashfs.compression}, block ${formatBytes(image.squashfs.blockSize)}, ${result.entryCount} entries)`);
      out(`  image id    ${printable(m.imageId) || '(none)'}`);
      out(`  volumes     ${list(m.volumes)}`);
      out(`  workdir     ${printable(m.workingDir)}`);
      out(`  env         ${list(m.env)}`);
      if (m.entrypoint.length) out(`  entrypoint  ${printable(JSON.stringify(m.entrypoint))}`);
      if (m.cmd.length) out(`  cmd         ${printable(JSON.stringify(m.cmd))}`);
      if (m.user) out(`  user        ${printable(m.user)}`);
      for (const [k, v] of Object.entries(m.labels)) out(`  label       ${printable(k)}=${printable(v)}`);
      if (result.verified) out('  verified    every block of the squashfs reads back');
      if (result.findings.length === 0) {
        out();
        out('no provider traps found');
        return;
      }
      out();
      for (const f of result.findings) out(formatFinding(f, MAX_LISTED));
    });
}
