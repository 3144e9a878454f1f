/** What a VM error's hint says, from the console and QEMU's stderr (vm-failures.ts crashError). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crashError } from '../../../src/vm/vm-failures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-crash-hints-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function consoleWith(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('crash hints', () => {
  it('a panic for lack of memory says to give the guest more', async () => {
    const log = await consoleWith('oom.log', 'Out of memory and no killable processes...\r\nKernel panic - not syncing: System is deadlocked on memory\r\n');
    const e = await crashError(log, 0);
    expect(e.code).toBe('vm.crashed');
    expect(e.hint).toMatch(/the guest ran out of memory \(Kernel panic - not syncing: System is deadlocked on memory\): give it more \(--memory/);
  });

  it('squashfs errors on the console: the image is damaged, with inspect --verify', async () => {
    const log = await consoleWith('damage.log', 'SQUASHFS error: xz decompression failed, data probably corrupt\r\nKernel panic - not syncing: Attempted to kill init!\r\n');
    const e = await crashError(log, 0);
    expect(e.hint).toMatch(/^the image is damaged \(the guest console says: SQUASHFS error: xz decompression failed/);
    expect(e.hint).toMatch(/inspect --verify/);
  });

  it("QEMU's stderr is in the hint and the details", async () => {
    const log = await consoleWith('empty.log', '');
    const e = await crashError(log, 1, 'qemu-system-x86_64: some device failed\n');
    expect(e.hint).toBe('QEMU said: qemu-system-x86_64: some device failed');
    expect(e.details?.['qemuStderr']).toBe('qemu-system-x86_64: some device failed\n');
  });
});
