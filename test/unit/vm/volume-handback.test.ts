/**
 * Giving a bound volume directory back while its path is swapped for a link to a host directory
 * (by whoever may rename in its parent): the owner and mode given back must land on the volume
 * directory or nowhere, never on what the link names.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handBack, recordOwnership } from '../../../src/vm/volume-handback.js';

const ATTEMPTS = 300;
const NOBODY = 65534;

let base: string;
let swapper: ChildProcess | undefined;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'gvmi-handback-'));
});

afterEach(async () => {
  swapper?.kill('SIGKILL');
  swapper = undefined;
  await rm(base, { recursive: true, force: true });
});

describe.skipIf(process.getuid?.() !== 0)(`hand-back while the volume path is swapped for a link (${ATTEMPTS} attempts, zero escapes)`, () => {
  it('never chmods or chowns what the link names', async () => {
    const volume = join(base, 'vol');
    const outside = join(base, 'outside');
    await mkdir(volume, { mode: 0o755 });
    await mkdir(outside);
    await chmod(outside, 0o711);
    await chown(outside, NOBODY, NOBODY);
    await chmod(volume, 0o755);
    const original = await recordOwnership(volume);
    // The same directory (its identity recorded) goes away and comes back, a link to outside in between.
    const script = `
      const fs = require('node:fs');
      const [volume, outside] = process.argv.slice(1);
      const away = volume + '.away';
      process.stdout.write('go\\n');
      for (;;) {
        try { fs.renameSync(volume, away); } catch {}
        try { fs.symlinkSync(outside, volume); } catch {}
        try { fs.unlinkSync(volume); } catch {}
        try { fs.renameSync(away, volume); } catch {}
      }
    `;
    const child = spawn(process.execPath, ['-e', script, volume, outside], { stdio: ['ignore', 'pipe', 'inherit'] });
    swapper = child;
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));
    let escapes = 0;
    for (let i = 0; i < ATTEMPTS; i++) {
      await handBack(original, NOBODY).catch(() => undefined);
      const st = await stat(outside);
      if ((st.mode & 0o7777) !== 0o711 || st.uid !== NOBODY) {
        escapes++;
        await chmod(outside, 0o711);
        await chown(outside, NOBODY, NOBODY);
      }
    }
    expect(escapes).toBe(0);
  });
});
