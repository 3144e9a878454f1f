/**
 * A .gvmi with damaged data blocks lists, mounts and boots: only a command reading those blocks
 * fails (SIGBUS, exit 135) and only the guest console says why. run names it (image-corrupt,
 * killed-by-signal), and inspect --verify finds it before anything runs.
 */
import { copyFile, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVm } from '../../src/index.js';
import { readGvmi } from '../../src/image/gvmi-file.js';
import { inspectImage } from '../../src/image/inspect-image.js';
import { runCli } from '../../src/cli/program.js';
import { failure } from '../helpers/failure.js';
import { capture } from '../helpers/capture-io.js';

let dir: string;
let damaged: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-damage-'));
  damaged = join(dir, 'damaged.gvmi');
  await copyFile(inject('tinyImage'), damaged);
  // 400 KB of zeros in the middle of the squashfs: data blocks (busybox), not its tables
  const { squashfsSize } = await readGvmi(damaged);
  const length = Math.min(400_000, Math.floor(squashfsSize / 3));
  const handle = await open(damaged, 'r+');
  await handle.write(Buffer.alloc(length), 0, length, Math.floor(squashfsSize / 2 - length / 2));
  await handle.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});


describe('a damaged image', () => {
  it('is listed as fine without --verify (only its data blocks are damaged)', async () => {
    const inspection = await inspectImage(damaged);
    expect(inspection.entryCount).toBeGreaterThan(100);
  });

  it('inspect --verify reads every block: image.corrupt names the damaged file, exit 65', async () => {
    const e = await failure(inspectImage(damaged, { verify: true }));
    expect(e.code).toBe('image.corrupt');
    expect(e.message).toMatch(/the squashfs is damaged: \/bin\/busybox cannot be read/);
    expect(e.hint).toMatch(/rebuild the image, or download it again/);
    const c = capture();
    expect(await runCli(['inspect', '--verify', damaged], c.io)).toBe(65);
    expect(c.err()).toMatch(/\/bin\/busybox cannot be read .*\[image\.corrupt\]/);
  });

  it('inspect --verify of a sound image says so', async () => {
    expect((await inspectImage(inject('tinyImage'), { verify: true })).verified?.method).toBe('pseudo-file');
    const c = capture();
    expect(await runCli(['inspect', '--verify', inject('tinyImage')], c.io)).toBe(0);
    expect(c.out()).toContain('verified    every block of the squashfs reads back');
  });

  it('a command reading damaged blocks: image-corrupt and killed-by-signal from diagnose', async () => {
    await using vm = await startVm({ image: damaged, snapshot: false });
    const r = await vm.exec(['/bin/ls', '/bin']);
    expect(r.exitCode).not.toBe(0);
    const findings = await vm.diagnose(r);
    const corrupt = findings.find((f) => f.code === 'image-corrupt');
    expect(corrupt, JSON.stringify(findings)).toBeDefined();
    expect(corrupt!.message).toMatch(/its squashfs is damaged \(SQUASHFS error: /);
    expect(corrupt!.fix).toMatch(/inspect --verify/);
    expect(r.signal).toBe('SIGBUS');
    expect(findings.find((f) => f.code === 'killed-by-signal')?.message).toMatch(/^killed by SIGBUS/);
  });

  it('the CLI: run says both, and exits 135 as before', async () => {
    const c = capture();
    expect(await runCli(['run', damaged, '--no-snapshot', '--', '/bin/ls', '/bin'], c.io)).toBe(135);
    expect(c.err()).toMatch(/gvmi-test: error \[image-corrupt\] the guest could not read the image/);
    expect(c.err()).toMatch(/gvmi-test: error \[killed-by-signal\] killed by SIGBUS/);
  });
});

describe('a sound image', () => {
  it('a command killed by a signal gets killed-by-signal and no image-corrupt', async () => {
    await using vm = await startVm({ image: inject('tinyImage') });
    const r = await vm.exec('kill -SEGV $$');
    expect(r.signal).toBe('SIGSEGV');
    const codes = (await vm.diagnose(r)).map((f) => f.code);
    expect(codes).toContain('killed-by-signal');
    expect(codes).not.toContain('image-corrupt');
  });
});
