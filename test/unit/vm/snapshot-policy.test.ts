/**
 * Restore or boot, and save (snapshot-policy.ts) with a fake launcher: which restore failures drop
 * a saved state and which do not, an abort, a failed save. The store is the real one, in a
 * temporary directory.
 */
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GvmiTestError, type ErrorCode } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logger.js';
import type { LaunchMode } from '../../../src/vm/launch-qemu.js';
import { startWithSnapshots, type SnapshotLauncher } from '../../../src/vm/snapshot-policy.js';
import { snapshotMemoryPath, snapshotStatePath } from '../../../src/snapshot/snapshot-store.js';

const KEY = 'k'.repeat(32);

let base: string;
const saved: Record<string, string | undefined> = {};
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'gvmi-snapshot-policy-'));
  for (const name of ['GVMI_TEST_SNAPSHOT_DIR', 'GVMI_TEST_CACHE']) saved[name] = process.env[name];
  process.env['GVMI_TEST_SNAPSHOT_DIR'] = join(base, 'snapshots');
  process.env['GVMI_TEST_CACHE'] = join(base, 'cache');
});
afterEach(async () => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await rm(base, { recursive: true, force: true });
});

interface FakeVm { mode: LaunchMode }

/** A launcher that records what it was asked; restores fail with `restoreFails` when set. */
function fakeLauncher(behaviour: { restoreFails?: () => Promise<never>; saveFails?: boolean } = {}) {
  const calls: string[] = [];
  const launcher: SnapshotLauncher<FakeVm> = {
    launch: async (mode) => {
      calls.push(mode.kind === 'boot' ? `boot${mode.monitor ? '+monitor' : ''}` : `restore ${mode.statePath}`);
      if (mode.kind === 'restore' && behaviour.restoreFails) await behaviour.restoreFails();
      return { mode };
    },
    save: async (_vm, temporaryPath, finalPath) => {
      calls.push('save');
      if (behaviour.saveFails) throw new GvmiTestError('snapshot.failed', 'QEMU could not save the VM state: disk full');
      await writeFile(temporaryPath, 'new state');
      await rename(temporaryPath, finalPath);
      return { bytes: 9, ms: 1 };
    },
    resume: async () => { calls.push('resume'); },
  };
  return { launcher, calls };
}

/** A saved state and its RAM file (named after the state's inode, as a save names it). */
async function existingState(content = 'old state'): Promise<string> {
  const path = snapshotStatePath(KEY);
  await mkdir(join(base, 'snapshots'), { recursive: true, mode: 0o700 });
  await writeFile(path, content, { mode: 0o600 });
  await writeFile(snapshotMemoryPath(path, (await stat(path)).ino), 'old ram', { mode: 0o600 });
  return path;
}

const start = (launcher: SnapshotLauncher<FakeVm>, options: { key?: string; signal?: AbortSignal } = {}) =>
  startWithSnapshots({ key: 'key' in options ? options.key : KEY, launcher, logger: silentLogger, describe: () => ({ image: 'x.gvmi' }), ...(options.signal ? { signal: options.signal } : {}) });

const failsWith = (code: ErrorCode) => async (): Promise<never> => { throw new GvmiTestError(code, `restore failed: ${code}`); };

describe('snapshot policy', () => {
  it('without a key: a plain boot, no monitor, nothing saved', async () => {
    const { launcher, calls } = fakeLauncher();
    const r = await start(launcher, { key: undefined });
    expect(r.snapshot).toEqual({ use: 'off' });
    expect(calls).toEqual(['boot']);
  });

  it('no saved state: boots with a monitor, saves, notes what it saved, and resumes the guest', async () => {
    const { launcher, calls } = fakeLauncher();
    const r = await start(launcher);
    expect(calls).toEqual(['boot+monitor', 'save', 'resume']);
    expect(r.snapshot).toEqual({ use: 'saved', key: KEY, bytes: 9, saveMs: 1 });
    expect(await readFile(snapshotStatePath(KEY), 'utf8')).toBe('new state');
    const note = JSON.parse(await readFile(join(base, 'snapshots', `${KEY}.json`), 'utf8')) as Record<string, unknown>;
    expect(note).toMatchObject({ image: 'x.gvmi', bytes: 9 });
  });

  it('a saved state: restored, nothing booted or saved', async () => {
    const path = await existingState();
    const { launcher, calls } = fakeLauncher();
    const r = await start(launcher);
    expect(r.snapshot).toEqual({ use: 'restored', key: KEY });
    const { ino } = await stat(path);
    expect(r.launched.mode).toEqual({ kind: 'restore', statePath: path, stateIno: ino, memoryPath: snapshotMemoryPath(path, ino) });
    expect(calls).toEqual([`restore ${path}`]);
  });

  for (const code of ['vm.boot-failed', 'agent.request-failed'] as const) {
    it(`a restore failing with ${code} (QEMU could not load the state, the guest refused RESUMED) drops the state, then boots`, async () => {
      await existingState();
      // the save fails too: the state file is gone, not replaced
      const { launcher, calls } = fakeLauncher({ restoreFails: failsWith(code), saveFails: true });
      const r = await start(launcher);
      expect(calls.slice(1)).toEqual(['boot+monitor', 'save', 'resume']);
      expect(r.snapshot).toMatchObject({ use: 'failed', key: KEY });
      await expect(stat(snapshotStatePath(KEY))).rejects.toMatchObject({ code: 'ENOENT' });
    });
  }

  for (const code of ['vm.boot-timeout', 'agent.timeout'] as const) {
    it(`a restore failing with ${code} (a loaded host) keeps the state, boots and saves a new one in its place`, async () => {
      await existingState();
      const { launcher } = fakeLauncher({ restoreFails: failsWith(code), saveFails: true });
      await start(launcher);
      expect(await readFile(snapshotStatePath(KEY), 'utf8')).toBe('old state');
      const { launcher: again } = fakeLauncher({ restoreFails: failsWith(code) });
      const r = await start(again);
      expect(r.snapshot).toEqual({ use: 'saved', key: KEY, replaced: `restore failed: ${code}`, bytes: 9, saveMs: 1 });
      expect(await readFile(snapshotStatePath(KEY), 'utf8')).toBe('new state');
    });
  }

  it('a state another process put in place while the restore failed is not dropped', async () => {
    const path = await existingState();
    const { launcher } = fakeLauncher({
      restoreFails: async () => {
        await writeFile(`${path}.other`, 'another process\'s state', { mode: 0o600 });
        await rename(`${path}.other`, path);
        throw new GvmiTestError('vm.boot-failed', 'QEMU exited');
      },
      saveFails: true,
    });
    await start(launcher);
    expect(await readFile(path, 'utf8')).toBe('another process\'s state');
  });

  it('an aborted start is not answered with a boot, and the state is kept', async () => {
    await existingState();
    const abort = new AbortController();
    const { launcher, calls } = fakeLauncher({
      restoreFails: async () => {
        abort.abort();
        throw new GvmiTestError('vm.boot-failed', 'start aborted');
      },
    });
    await expect(start(launcher, { signal: abort.signal })).rejects.toMatchObject({ code: 'vm.boot-failed', message: 'start aborted' });
    expect(calls).toHaveLength(1);
    expect(await readFile(snapshotStatePath(KEY), 'utf8')).toBe('old state');
  });

  it('a failed save: the VM runs on (returned, resumed) and says why nothing was saved', async () => {
    const { launcher, calls } = fakeLauncher({ saveFails: true });
    const r = await start(launcher);
    expect(r.launched.mode).toEqual({ kind: 'boot', monitor: true });
    expect(r.snapshot).toEqual({ use: 'failed', key: KEY, reason: 'QEMU could not save the VM state: disk full' });
    expect(calls).toEqual(['boot+monitor', 'save', 'resume']);
  });

  it('a boot that fails is the start\'s failure', async () => {
    const launcher: SnapshotLauncher<FakeVm> = {
      launch: async () => { throw new GvmiTestError('vm.boot-timeout', 'the guest agent did not answer'); },
      save: async () => ({ bytes: 0, ms: 0 }),
      resume: async () => {},
    };
    await expect(start(launcher)).rejects.toMatchObject({ code: 'vm.boot-timeout' });
  });
});
