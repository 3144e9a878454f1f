/**
 * Saved VM states ("snapshots"), one file per key under $GVMI_TEST_CACHE/snapshots. A key covers
 * everything the saved state depends on: the image's bytes, the kernel and init, the QEMU binary,
 * and the whole QEMU command line with per-VM paths taken out (memory, CPUs, accelerator, kernel
 * command line, number of volume devices…). Files are written under a temporary name and renamed,
 * so readers never see half a state; the least recently used ones are removed past a size budget.
 *
 * A state file is handed to QEMU, which runs whatever guest it describes, as the user QEMU runs
 * as: so the directory must be ours alone (owned-path.ts: ours, not writable by group or others,
 * and every directory above it root's or ours and not writable by others unless sticky), else
 * snapshots fail loudly (setup.unsafe-snapshot-dir) rather than trust what another local user
 * could have planted. Inside a directory that is ours, a state that is not (another owner, group-
 * or world-writable, a symlink: put there by hand or while the directory was open) is not
 * restored, with a warning, and the next save replaces it. Files are created 0600, directories 0700.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { cacheDir } from '../cache-dir.js';
import { GvmiTestError } from '../errors.js';
import { budgetBytesFromEnv, entriesOverBudget } from '../lru-budget.js';
import { notOurs, untrustedDirectory } from '../owned-path.js';

/** Bumped when what a snapshot holds, or how it is restored, changes. */
const SNAPSHOT_FORMAT = 1;
const DEFAULT_BUDGET_MIB = 2048;
/** Memos (image digests, shadowed paths) older than this are dropped when snapshots are pruned. */
const MEMO_MAX_AGE_MS = 30 * 24 * 3600 * 1000;
const STALE_TEMPORARY_MS = 3600 * 1000;

export interface SnapshotKeyInputs {
  imageDigest: string;
  /** Under KVM the guest runs on the host's CPU (-cpu max): its model, flags and kernel. */
  hostCpu?: string;
  kernelHash: string;
  initHash: string;
  /** Path, size and mtime of the QEMU binary: a QEMU upgrade may change the state format. */
  qemuIdentity: string;
  /** The QEMU arguments with per-VM paths replaced by placeholders. */
  args: readonly string[];
}

/** The QEMU binary by path, size and mtime: a QEMU upgrade may change the state format. */
export async function qemuIdentity(qemuPath: string): Promise<string> {
  const st = await stat(qemuPath);
  return `${qemuPath}:${st.size}:${st.mtimeMs}`;
}

/** The host CPU a KVM guest sees (-cpu max): a state saved on one CPU may not run on another. */
export async function hostCpuIdentity(): Promise<string> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const field = (name: string): string => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1] ?? '';
  return JSON.stringify([field('vendor_id'), field('model name'), field('flags'), release()]);
}

export function snapshotKey(inputs: SnapshotKeyInputs): string {
  return createHash('sha256').update(JSON.stringify({ format: SNAPSHOT_FORMAT, ...inputs })).digest('hex').slice(0, 32);
}

export function snapshotDir(): string {
  return process.env['GVMI_TEST_SNAPSHOT_DIR'] ?? join(cacheDir(), 'snapshots');
}

/** Throws setup.unsafe-snapshot-dir unless the snapshot directory (made or to be made) is ours alone. */
export async function assertSnapshotDirTrusted(): Promise<void> {
  const dir = snapshotDir();
  const untrusted = await untrustedDirectory(dir);
  if (!untrusted) return;
  throw new GvmiTestError('setup.unsafe-snapshot-dir', `refusing snapshot directory ${dir}: ${untrusted.reason}, so another local user could plant a VM state there`, {
    hint: `${untrusted.fix}; or set GVMI_TEST_SNAPSHOT_DIR to a directory of your own, or GVMI_TEST_SNAPSHOT=0 (--no-snapshot) to boot without snapshots`,
    details: { dir, reason: untrusted.reason },
  });
}

export function snapshotStatePath(key: string): string {
  return join(snapshotDir(), `${key}.state`);
}

export interface FoundSnapshot {
  path: string;
  /** Which file it was: another process may rename a new state over the path at any time. */
  dev: number;
  ino: number;
}

/**
 * The state file for `key`, if one was saved and is ours alone; marks it used (for pruning).
 * Throws setup.unsafe-snapshot-dir when the directory cannot be trusted.
 */
export async function findSnapshot(key: string, logger?: Logger): Promise<FoundSnapshot | undefined> {
  await assertSnapshotDirTrusted();
  const path = snapshotStatePath(key);
  const st = await lstat(path).catch(() => undefined);
  if (!st || (st.isFile() && st.size === 0)) return undefined;
  const untrusted = st.isFile() ? notOurs(path, st) : { reason: `${path} is not a regular file`, fix: `rm ${path}` };
  if (untrusted) {
    logger?.warn({ key, path }, `not restoring a snapshot that is not ours alone (${untrusted.reason}); booting instead`);
    return undefined;
  }
  const now = new Date();
  await utimes(path, now, now).catch(() => {});
  return { path, dev: st.dev, ino: st.ino };
}

/** Removes a state (and its note); with `only`, only if the path still holds that very file. */
export async function discardSnapshot(key: string, only?: FoundSnapshot): Promise<void> {
  const path = snapshotStatePath(key);
  if (only) {
    const st = await stat(path).catch(() => undefined);
    if (!st || st.dev !== only.dev || st.ino !== only.ino) return;
  }
  await rm(path, { force: true });
  await rm(join(snapshotDir(), `${key}.json`), { force: true });
}

/** A temporary path in the snapshot directory, to be renamed over snapshotStatePath(key). */
export async function snapshotTemporaryPath(key: string): Promise<string> {
  await mkdir(snapshotDir(), { recursive: true, mode: 0o700 });
  await assertSnapshotDirTrusted();
  return join(snapshotDir(), `.${key}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
}

/** A human-readable note beside a state file: what it was saved from. */
export async function describeSnapshot(key: string, description: Record<string, unknown>): Promise<void> {
  await writeFile(join(snapshotDir(), `${key}.json`), `${JSON.stringify(description, null, 2)}\n`, { mode: 0o600 });
}

export interface SavedSnapshot {
  key: string;
  bytes: number;
  lastUsed: Date;
}

export async function listSnapshots(): Promise<SavedSnapshot[]> {
  const dir = snapshotDir();
  const names = await readdir(dir).catch(() => [] as string[]);
  const found = await Promise.all(names.filter((n) => n.endsWith('.state')).map(async (name) => {
    const st = await stat(join(dir, name)).catch(() => undefined);
    return st ? { key: name.slice(0, -'.state'.length), bytes: st.size, lastUsed: st.mtime } : undefined;
  }));
  return found.filter((s) => s !== undefined).sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
}

export function snapshotBudgetBytes(): number {
  return budgetBytesFromEnv('GVMI_TEST_SNAPSHOT_CACHE_MIB', DEFAULT_BUDGET_MIB);
}

/**
 * Removes least recently used states until the rest fit in the budget (never `keep`: the state
 * just saved), notes without a state, and old memos.
 */
export async function pruneSnapshots(budgetBytes = snapshotBudgetBytes(), keep?: string): Promise<string[]> {
  const dir = snapshotDir();
  // Names listed from a directory another user controls could lead the removals anywhere.
  if (await untrustedDirectory(dir)) return [];
  const names = await readdir(dir).catch(() => [] as string[]);
  const states = await listSnapshots();
  const removed: string[] = [];
  for (const s of entriesOverBudget(states, budgetBytes, keep)) {
    await discardSnapshot(s.key);
    removed.push(s.key);
  }
  // Left behind by a save that was killed half-way; notes whose state is gone.
  const stateKeys = new Set(states.map((s) => s.key));
  const leftovers = names.filter((n) => n.endsWith('.tmp') || (n.endsWith('.json') && !stateKeys.has(n.slice(0, -'.json'.length))));
  for (const name of leftovers) {
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > STALE_TEMPORARY_MS) await rm(join(dir, name), { force: true });
  }
  // Memos (memo.ts) of image digests, shadowed paths and QEMU probes: rebuilt on demand.
  for (const memoDir of ['digests', 'shadowed', 'qemu-probes'].map((kind) => join(cacheDir(), kind))) {
    if (await untrustedDirectory(memoDir)) continue;
    for (const name of await readdir(memoDir).catch(() => [] as string[])) {
      const st = await stat(join(memoDir, name)).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > MEMO_MAX_AGE_MS) await rm(join(memoDir, name), { force: true });
    }
  }
  return removed;
}
