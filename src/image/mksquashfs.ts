/** Runs the real mksquashfs, the way gvmkit-build does (reference §1). */
import { execa } from 'execa';
import { GvmiTestError } from '../errors.js';
import type { BuildCompression } from './squashfs-superblock.js';

export interface MksquashfsOptions {
  compression: BuildCompression;
  /** mksquashfs pseudo-definitions (owners, modes, device nodes) to apply on top of the tree. */
  pseudoFile?: string;
  /** Paths relative to the source, one a line, that mksquashfs leaves out (-ef). */
  excludeFile?: string;
  /** Called with 0..100 as mksquashfs reports progress. */
  onProgress?: (percent: number) => void;
  signal?: AbortSignal;
}

export function mksquashfsArgs(source: string, output: string, options: MksquashfsOptions): string[] {
  const args = [source, output, '-noappend', '-comp', options.compression, '-b', '131072', '-progress'];
  // gvmkit-build 0.3 asks lz4 for its high-compression mode.
  if (options.compression === 'lz4') args.push('-Xhc');
  if (options.pseudoFile) args.push('-pf', options.pseudoFile);
  if (options.excludeFile) args.push('-ef', options.excludeFile);
  return args;
}

export async function runMksquashfs(source: string, output: string, options: MksquashfsOptions): Promise<void> {
  const child = execa('mksquashfs', mksquashfsArgs(source, output, options), {
    reject: false,
    all: true,
    ...(options.signal ? { cancelSignal: options.signal } : {}),
  });
  let last = -1;
  child.stdout?.on('data', (chunk: Buffer) => {
    // The progress bar ends in " 123/456  27%"; report each new percentage once.
    const matches = chunk.toString('latin1').match(/(\d+)%/g);
    const value = matches ? Number.parseInt(matches[matches.length - 1]!, 10) : NaN;
    if (Number.isFinite(value) && value !== last) {
      last = value;
      options.onProgress?.(value);
    }
  });
  const result = await child;
  if (result.failed) {
    const notFound = (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    if (notFound) {
      throw new GvmiTestError('setup.tool-missing', 'mksquashfs not found', { hint: 'install squashfs-tools (make deps)' });
    }
    const tail = String(result.all ?? '').split('\n').filter((l) => l.trim() && !/\d+%$/.test(l.trim())).slice(-5).join('\n');
    throw new GvmiTestError('build.mksquashfs-failed', `mksquashfs failed (exit ${result.exitCode ?? 'none'}): ${tail}`);
  }
}
