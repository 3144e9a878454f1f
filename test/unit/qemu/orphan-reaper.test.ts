/**
 * The orphan reaper (a /bin/sh run as root when gvmi-test is) after the host died: it must not
 * run commands found through the caller's PATH, and it must remove the VM's temporary directories
 * only once QEMU is gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { processStartTime, WATCHER } from '../../../src/qemu/orphan-reaper.js';

let base: string;
let victim: ChildProcess | undefined;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'gvmi-reaper-'));
});

afterEach(async () => {
  victim?.kill('SIGKILL');
  victim = undefined;
  await rm(base, { recursive: true, force: true });
});

/** Runs the watcher for `pid` with `env`, then closes its input as a dying host does. */
async function reapAfterHostDeath(pid: number, dirs: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const watcher = spawn('/bin/sh', ['-c', WATCHER, 'gvmi-test-reaper', ...dirs], { stdio: ['pipe', 'ignore', 'inherit'], env });
  const done = new Promise<void>((resolve) => watcher.once('close', () => resolve()));
  watcher.stdin!.end(`${pid} ${processStartTime(pid)}\n`);
  await done;
}

describe('orphan reaper', () => {
  it('kills QEMU and removes the directories with the system tools, not the ones first in the caller\'s PATH', async () => {
    const fakeBin = join(base, 'bin');
    await mkdir(fakeBin);
    for (const tool of ['rm', 'cat', 'chown', 'chmod', 'id', 'sleep']) {
      await writeFile(join(fakeBin, tool), `#!/bin/sh\necho ${tool} >> ${join(base, 'planted-ran')}\n`);
      await chmod(join(fakeBin, tool), 0o755);
    }
    const volume = join(base, 'vol');
    await mkdir(join(volume, 'd'), { recursive: true });
    await writeFile(join(volume, 'd/f'), 'guest');
    const child = spawn('/bin/sleep', ['1000'], { stdio: 'ignore' });
    victim = child;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await reapAfterHostDeath(child.pid!, [volume], { ...process.env, PATH: `${fakeBin}:${process.env['PATH'] ?? ''}` });
    await gone;
    await expect(stat(join(base, 'planted-ran'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(volume)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a directory replaced by a link is not followed: the link is left, what it names stays', async () => {
    const outside = join(base, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'f'), 'host');
    const { symlink } = await import('node:fs/promises');
    await symlink(outside, join(base, 'vol'));
    const child = spawn('/bin/sleep', ['1000'], { stdio: 'ignore' });
    victim = child;
    await reapAfterHostDeath(child.pid!, [join(base, 'vol')], process.env);
    expect((await stat(join(outside, 'f'))).isFile()).toBe(true);
  });
});
