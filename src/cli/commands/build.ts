import type { Command } from 'commander';
import { BUILD_COMPRESSIONS, type BuildCompression } from '../../image/squashfs-superblock.js';
import { GvmiTestError } from '../../errors.js';
import { formatBytes, writeLine, type CliIo } from '../io.js';
import { collect, parseCommandWords, parseKeyValue } from '../options.js';
import { printable } from '../../terminal-safe.js';

interface BuildFlags {
  output: string;
  force?: boolean;
  compression: string;
  volume: string[];
  env: string[];
  workdir?: string;
  entrypoint?: string;
  cmd?: string;
  label: string[];
  maxExpand?: string;
  json?: boolean;
}

export function registerBuild(program: Command, io: CliIo): void {
  program
    .command('build')
    .description('build a .gvmi from a root filesystem directory, a `docker save` tarball, an OCI layout (no Docker engine needed), or an image of the local Docker or Podman engine')
    .argument('<source>', 'directory, docker-save .tar, OCI layout (directory or .tar), or IMAGE[:TAG] (docker:IMAGE / podman:IMAGE to choose the engine)')
    .requiredOption('-o, --output <file>', 'the .gvmi to write')
    .option('-f, --force', 'replace the output if it exists')
    .option('--compression <method>', `squashfs compression: ${BUILD_COMPRESSIONS.join(', ')}`, 'lzo')
    .option('--volume <path>', 'declare a VOLUME (repeatable)', collect, [])
    .option('--env <KEY=VALUE>', 'add an environment variable (repeatable)', collect, [])
    .option('--workdir <path>', 'the working directory of every process')
    .option('--entrypoint <cmd>', 'ENTRYPOINT, as JSON array or words (providers ignore it)')
    .option('--cmd <cmd>', 'CMD, as JSON array or words (providers ignore it)')
    .option('--label <KEY=VALUE>', 'add a label (repeatable)', collect, [])
    .option('--max-expand <size|ratio>', 'how far an archive may expand: bytes (8GiB) or a ratio to its size (100x); default 20x, at least 64MiB (env GVMI_TEST_MAX_EXPAND)')
    .option('--json', 'print the result as JSON')
    .action(async (source: string, flags: BuildFlags) => {
      if (!(BUILD_COMPRESSIONS as readonly string[]).includes(flags.compression)) {
        throw new GvmiTestError('usage', `--compression ${flags.compression}: choose one of ${BUILD_COMPRESSIONS.join(', ')}`);
      }
      for (const e of flags.env) parseKeyValue(e, '--env');
      const labels = Object.fromEntries(flags.label.map((l) => parseKeyValue(l, '--label')));
      let lastStage = '';
      const started = Date.now();
      const { buildImageFrom } = await import('../../image/engine-image.js');
      const result = await buildImageFrom(source, {
        output: flags.output,
        force: flags.force ?? false,
        compression: flags.compression as BuildCompression,
        volumes: flags.volume,
        env: flags.env,
        ...(flags.workdir !== undefined ? { workdir: flags.workdir } : {}),
        ...(flags.entrypoint !== undefined ? { entrypoint: parseCommandWords(flags.entrypoint, '--entrypoint') } : {}),
        ...(flags.cmd !== undefined ? { cmd: parseCommandWords(flags.cmd, '--cmd') } : {}),
        labels,
        ...(flags.maxExpand !== undefined ? { maxExpand: flags.maxExpand } : {}),
        onProgress: (stage, percent) => {
          if (flags.json) return;
          if (io.stderr.isTTY) {
            io.stderr.write(`\r\x1b[K${stage}${percent === undefined ? '' : ` ${percent}%`}`);
          } else if (stage !== lastStage) {
            writeLine(io.stderr, `gvmi-test build: ${stage}`);
          }
          lastStage = stage;
        },
      });
      if (io.stderr.isTTY && !flags.json) io.stderr.write('\r\x1b[K');
      const { image } = result;
      if (flags.json) {
        writeLine(io.stdout, JSON.stringify({
          output: image.path,
          source: result.sourceKind,
          ...(result.engineImage ? { engineImage: result.engineImage } : {}),
          fileSize: image.fileSize,
          squashfsSize: image.squashfsSize,
          compression: image.squashfs.compression,
          metadata: image.metadata,
          warnings: result.warnings,
        }));
        return;
      }
      // Warnings quote the archive's own config (its architecture): escaped onto one line.
      for (const w of result.warnings) writeLine(io.stderr, `warning: ${printable(w)}`);
      writeLine(io.stdout, `built ${image.path} (${formatBytes(image.fileSize)}, ${image.squashfs.compression}, from ${result.engineImage ? `${result.engineImage.engine} image ${printable(result.engineImage.name)}` : result.sourceKind}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
}
