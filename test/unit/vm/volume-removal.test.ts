/**
 * Removing a VM's temporary volume directories while something running as QEMU's user (the guest
 * through a QEMU not yet gone, or another process of that user) swaps a directory in them for a
 * link to a host directory: the removal must never reach through the link.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { planVolumes } from '../../../src/vm/volumes.js';

const SECRET = 'host-secret-9c1d';
const ATTEMPTS = 150;

let base: string;
let outside: string;
let swapper: ChildProcess | undefined;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'gvmi-removal-'));
  outside = join(base, 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'f'), SECRET);
  await chmod(join(outside, 'f'), 0o600);
});

afterEach(async () => {
  swapper?.kill('SIGKILL');
  swapper = undefined;
  await rm(base, { recursive: true, force: true });
});

/**
 * One process swapping `<dir>/d` between a directory holding `f` and a link to `outside`, where
 * `<dir>` is read from `control` on every round (so one swapper serves every attempt). `stop N`
 * there makes it idle, which it confirms by writing the same words to `control.ack`.
 */
async function startSwapper(control: string): Promise<void> {
  const script = `
    const fs = require('node:fs');
    const [control, outside] = process.argv.slice(1);
    process.stdout.write('go\\n');
    for (;;) {
      let dir;
      try { dir = fs.readFileSync(control, 'utf8'); } catch { continue; }
      if (dir.startsWith('stop ')) { fs.writeFileSync(control + '.ack', dir); continue; }
      if (!dir) continue;
      const d = dir + '/d', real = dir + '/.real', link = dir + '/.link';
      try { fs.mkdirSync(real); fs.writeFileSync(real + '/f', 'guest'); fs.renameSync(real, d); } catch {}
      try { fs.rmSync(real, { recursive: true, force: true }); } catch {}
      try { fs.symlinkSync(outside, link); fs.rmSync(d, { recursive: true, force: true }); fs.renameSync(link, d); } catch {}
      try { fs.rmSync(link, { force: true }); } catch {}
    }
  `;
  const child = spawn(process.execPath, ['-e', script, control, outside], { stdio: ['ignore', 'pipe', 'inherit'] });
  swapper = child;
  await new Promise<void>((r) => child.stdout!.once('data', () => r()));
}

/** Tells the swapper to stop swapping and waits until it says it has (no timing: it answers when it reads). */
async function pause(control: string, round: number): Promise<void> {
  await writeFile(control, `stop ${round}`);
  while ((await readFile(`${control}.ack`, 'utf8').catch(() => '')) !== `stop ${round}`) await new Promise((r) => setTimeout(r, 5));
}

describe(`temporary volumes removed while a directory in them is swapped for a link (${ATTEMPTS} attempts, zero escapes)`, () => {
  it('the removal never deletes through the link', async () => {
    const control = join(base, 'control');
    await writeFile(control, '');
    await startSwapper(control);
    let escapes = 0;
    for (let i = 0; i < ATTEMPTS; i++) {
      const planned = await planVolumes(['/golem/output']);
      const volume = planned.mounts[0]!.hostPath;
      await mkdir(join(volume, 'd'));
      await writeFile(join(volume, 'd/f'), 'guest');
      await writeFile(control, volume);
      await planned.cleanup();
      await pause(control, i);
      if ((await readFile(join(outside, 'f'), 'utf8').catch(() => undefined)) !== SECRET) {
        escapes++;
        await writeFile(join(outside, 'f'), SECRET);
      }
      // What the swapper made after the cleanup gave up (or between our writes): not ours to leave.
      await rm(volume, { recursive: true, force: true });
    }
    // A path-based recursive removal (tmp's cleanup) lost outside/f 5 times in 150 here.
    expect(escapes).toBe(0);
  });
});
