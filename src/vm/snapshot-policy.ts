/**
 * Restore or boot, and save: how a VM starts when snapshots are on. A saved state of the same
 * configuration (its key) is restored; a restore that fails falls back to a boot, and drops the
 * state only when the failure says the state itself is bad; a boot saves its state for the next
 * start, and a failed save leaves the VM running. The launching itself is the caller's (a
 * function), so this policy is tested with a fake launcher.
 */
import type { Logger } from 'pino';
import { GvmiTestError } from '../errors.js';
import type { SavedState } from '../qemu/migration.js';
import { describeSnapshot, discardSnapshot, findSnapshot, pruneSnapshots, snapshotStatePath, snapshotTemporaryPath } from '../snapshot/snapshot-store.js';
import type { LaunchMode } from './launch-qemu.js';

/**
 * restored: started from a saved state. saved: booted, and saved its state for later starts
 * (`replaced` when a broken snapshot was dropped first). failed: booted, the save failed. off: not used.
 */
export type SnapshotUse =
  | { use: 'restored'; key: string }
  | { use: 'saved'; key: string; bytes?: number; saveMs?: number; replaced?: string }
  | { use: 'failed'; key: string; reason: string }
  | { use: 'off' };

/** What the policy needs of whoever starts VMs; `L` is one started VM. */
export interface SnapshotLauncher<L> {
  /** Starts a VM: booted (with a monitor when its state is to be saved) or restored. Throws explained errors. */
  launch(mode: LaunchMode): Promise<L>;
  /** Writes the VM's state to `temporaryPath`, renamed to `finalPath`; the VM runs on whatever happens. */
  save(launched: L, temporaryPath: string, finalPath: string): Promise<SavedState>;
  /** After a save, done or failed: the VM's monitor goes and its guest gets the time and fresh entropy. */
  resume(launched: L): Promise<void>;
}

export interface SnapshotStart<L> {
  /** The configuration's snapshot key; undefined: snapshots are off (or the image has no digest). */
  key: string | undefined;
  launcher: SnapshotLauncher<L>;
  logger: Logger;
  signal?: AbortSignal;
  /** Written beside a saved state: what it was saved from. */
  describe: () => Record<string, unknown>;
}

/**
 * A restore that failed this way says the state cannot be used (QEMU could not load it: corrupt,
 * or from an incompatible host; or the restored guest refused RESUMED). A slow answer (a loaded
 * host) or a file pruned meanwhile says nothing against the state.
 */
export function restoreFailureCondemnsState(error: unknown): boolean {
  return error instanceof GvmiTestError && (error.code === 'vm.boot-failed' || error.code === 'agent.request-failed');
}

export async function startWithSnapshots<L>(start: SnapshotStart<L>): Promise<{ launched: L; snapshot: SnapshotUse }> {
  const { key, launcher, logger } = start;
  if (key === undefined) return { launched: await launcher.launch({ kind: 'boot', monitor: false }), snapshot: { use: 'off' } };

  let replaced: string | undefined;
  const found = await findSnapshot(key, logger);
  if (found) {
    try {
      return { launched: await launcher.launch({ kind: 'restore', statePath: found.path, stateIno: found.ino, memoryPath: found.memoryPath }), snapshot: { use: 'restored', key } };
    } catch (error) {
      if (start.signal?.aborted) throw error;
      logger.warn({ error, key }, 'restoring the snapshot failed; booting instead');
      // Only that very file: another process may have put a new state in its place meanwhile.
      if (restoreFailureCondemnsState(error)) await discardSnapshot(key, found);
      replaced = (error as Error).message;
    }
  }

  const launched = await launcher.launch({ kind: 'boot', monitor: true });
  // Saved before any volume is mounted (QEMU refuses to migrate with a 9p export in use), and
  // before anything of the image has run, and nothing may: whatever ran (a daemon a hostile
  // /bin/sh leaves behind, a file it writes) would be saved and start again in every restored VM,
  // before the user's first command. The first process a VM runs is the user's, id 1, as on a
  // provider.
  let snapshot: SnapshotUse;
  try {
    const saved = await launcher.save(launched, await snapshotTemporaryPath(key), snapshotStatePath(key));
    snapshot = { use: 'saved', key, ...(replaced !== undefined ? { replaced } : {}), bytes: saved.bytes, saveMs: saved.ms };
    logger.debug({ key, ...saved }, 'snapshot saved');
    await describeSnapshot(key, { ...start.describe(), savedAt: new Date().toISOString(), ...saved }).catch(() => {});
    void pruneSnapshots(undefined, key).catch(() => {});
  } catch (error) {
    logger.warn({ error }, 'saving a snapshot failed; this VM runs on');
    snapshot = { use: 'failed', key, reason: (error as Error).message };
  }
  await launcher.resume(launched);
  return { launched, snapshot };
}
