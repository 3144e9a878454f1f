/**
 * start-entrypoint as upstream's runtime does it (ya-runtime-vm lib.rs run_entrypoint): Entrypoint
 * + Cmd as one process, BIN as written (no PATH search), argv[0] its file name, the image Env and
 * WORKDIR; the VM runs on after it exits (the Rust host sends no ENT flag).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVm } from '../../src/index.js';
import { TINY_IMAGE_SETTINGS } from '../helpers/busybox-rootfs.js';
import { copyOfTinyImage } from '../helpers/cached-image.js';

const CLI = resolve('dist/cli/main.js');
let dir: string;
let withEntrypoint: string;
let withoutEntrypoint: string;
let bareCmd: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-entrypoint-'));
  // Built as gvmi-test build builds them, and kept between runs (helpers/cached-image.ts).
  withEntrypoint = await copyOfTinyImage(join(dir, 'entry.gvmi'), inject('tinyRootfs'), {
    ...TINY_IMAGE_SETTINGS,
    entrypoint: ['/bin/sh', '-c'], cmd: ['echo "argv0=$0 greeting=$GREETING cwd=$(pwd)"; echo ran > /golem/output/ran; exit 4'],
  });
  withoutEntrypoint = await copyOfTinyImage(join(dir, 'none.gvmi'), inject('tinyRootfs'), { ...TINY_IMAGE_SETTINGS, entrypoint: [], cmd: [] });
  bareCmd = await copyOfTinyImage(join(dir, 'bare-cmd.gvmi'), inject('tinyRootfs'), { ...TINY_IMAGE_SETTINGS, entrypoint: [], cmd: ['echo', 'cmd-ran'] });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('start-entrypoint', () => {
  it('runs Entrypoint + Cmd with argv[0] as the file name, the image Env and WORKDIR; the VM runs on', async () => {
    const vm = await startVm({ image: withEntrypoint });
    try {
      const result = await (await vm.startEntrypoint()).wait();
      expect(result.exitCode).toBe(4);
      expect(result.stdout).toBe('argv0=sh greeting=hello from the image cwd=/golem/work\n');
      expect((await vm.exec('cat /golem/output/ran')).stdout).toBe('ran\n'); // still running
    } finally {
      await vm.stop();
    }
  });

  it('the tiny image: its sh -c entrypoint gets the CMD words as $0 and $1', async () => {
    const vm = await startVm({ image: inject('tinyImage') });
    try {
      expect((await (await vm.startEntrypoint()).wait()).exitCode).toBe(0);
      expect((await vm.exec('cat /golem/output/entrypoint')).stdout).toBe('entrypoint-ran\n');
    } finally {
      await vm.stop();
    }
  });

  it('a CMD of `echo cmd-ran` alone is not a path: exit 9 on a provider, and gvmi-test says why', async () => {
    const vm = await startVm({ image: bareCmd });
    try {
      const result = await (await vm.startEntrypoint()).wait();
      expect(result.exitCode).toBe(9);
      expect(result.execFailure).toMatchObject({ step: 'execve', errnoName: 'ENOENT' });
      const findings = await vm.diagnose(result);
      expect(findings[0]).toMatchObject({ code: 'exec-failed' });
      expect(findings[0]!.message).toContain('echo is not a path');
    } finally {
      await vm.stop();
    }
  });

  it('an image with neither Entrypoint nor Cmd is refused, as a provider refuses it', async () => {
    const vm = await startVm({ image: withoutEntrypoint });
    try {
      await expect(vm.startEntrypoint()).rejects.toMatchObject({ code: 'usage' });
    } finally {
      await vm.stop();
    }
  });

  it('the CLI streams the output and exits with the entrypoint status', async () => {
    const r = await execa('node', [CLI, 'start-entrypoint', withEntrypoint], { reject: false });
    expect(r.exitCode).toBe(4);
    expect(r.stdout).toBe('argv0=sh greeting=hello from the image cwd=/golem/work');
    expect(r.stderr).toContain('on a provider the VM runs on');
  });
});
