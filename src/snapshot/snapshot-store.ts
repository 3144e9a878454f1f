/**
 * Saved VM states ("snapshots"), under $GVMI_TEST_CACHE/snapshots: per key, `<key>.state` (the
 * devices and CPU, as QEMU's migration stream) and `<key>.<inode>.ram` (the guest's RAM, a sparse
 * file mapped copy-on-write by restored VMs: src/qemu/migration.ts). The RAM file is named after
 * the inode of the state it belongs to and written before that state is renamed into place, so a
 * state and a RAM file of two different saves can never be paired, however saves race. A key covers
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
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, chmod, constants, lstat, mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { cacheDir } from '../cache-dir.js';
import { GvmiTestError } from '../errors.js';
import { budgetBytesFromEnv, entriesOverBudget } from '../lru-budget.js';
import { notOurs, untrustedDirectory } from '../owned-path.js';
import type { SavedMemory } from '../qemu/migration.js';

/** Bumped when what a snapshot holds, or how it is restored, changes (2: RAM as its own file). */
const SNAPSHOT_FORMAT = 2;
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

/** The RAM file of the state whose inode is `stateIno` (saved under the state's final path). */
export function snapshotMemoryPath(statePath: string, stateIno: number): string {
  return `${statePath.replace(/\.state$/, '')}.${stateIno}.ram`;
}

export interface FoundSnapshot {
  path: string;
  /** Which file it was: another process may rename a new state over the path at any time. */
  dev: number;
  ino: number;
  /** Its RAM file (snapshotMemoryPath). */
  memoryPath: string;
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
  const memoryPath = snapshotMemoryPath(path, st.ino);
  const memory = untrusted ? undefined : await lstat(memoryPath).catch(() => undefined);
  // A state without its RAM file (removed by hand, or a save killed half-way) is no snapshot.
  if (!untrusted && !memory) return undefined;
  const untrustedMemory = untrusted ?? (memory!.isFile() ? notOurs(memoryPath, memory!) : { reason: `${memoryPath} is not a regular file`, fix: `rm ${memoryPath}` });
  if (untrustedMemory) {
    logger?.warn({ key, path }, `not restoring a snapshot that is not ours alone (${untrustedMemory.reason}); booting instead`);
    return undefined;
  }
  const now = new Date();
  await utimes(path, now, now).catch(() => {});
  return { path, dev: st.dev, ino: st.ino, memoryPath };
}

/** Removes a state (with its RAM file and note); with `only`, only if the path still holds that very file. */
export async function discardSnapshot(key: string, only?: FoundSnapshot): Promise<void> {
  const path = snapshotStatePath(key);
  const st = await stat(path).catch(() => undefined);
  if (only && (!st || st.dev !== only.dev || st.ino !== only.ino)) return;
  await rm(path, { force: true });
  if (st) await rm(snapshotMemoryPath(path, st.ino), { force: true });
  await rm(join(snapshotDir(), `${key}.json`), { force: true });
}

/** coreutils' cp, by absolute path (nothing is run from the caller's PATH, which may be planted). */
const CP_CANDIDATES = ['/usr/bin/cp', '/bin/cp'];

async function findCp(): Promise<string> {
  for (const cp of CP_CANDIDATES) if (await access(cp, constants.X_OK).then(() => true, () => false)) return cp;
  throw new GvmiTestError('snapshot.failed', `no cp at ${CP_CANDIDATES.join(' or ')} to copy the VM's RAM with`);
}

/**
 * Saves a paused VM's RAM file (`sharedMemory`, the file QEMU runs the guest in) as the RAM of the
 * state being written at `stateTemporaryPath`, to be renamed to `finalStatePath`. Only the
 * written parts are copied (`cp --sparse=always`: ~30 MiB of a 512 MiB guest, ~20 ms). Returns
 * the bytes it takes on disk, and how to remove it should the state not be saved after all.
 */
export async function saveSnapshotMemory(sharedMemory: string, stateTemporaryPath: string, finalStatePath: string): Promise<SavedMemory> {
  const { ino } = await stat(stateTemporaryPath);
  const target = snapshotMemoryPath(finalStatePath, ino);
  const temporary = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  try {
    await promisify(execFile)(await findCp(), ['--sparse=always', '--reflink=never', '--', sharedMemory, temporary]);
    await chmod(temporary, 0o600);
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error instanceof GvmiTestError ? error : new GvmiTestError('snapshot.failed', `could not copy the VM's RAM: ${(error as Error).message}`, { cause: error });
  }
  const st = await stat(target);
  return { bytes: Math.min(st.size, st.blocks * 512), discard: () => rm(target, { force: true }) };
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
  /** The state and its RAM file, on disk. */
  bytes: number;
  lastUsed: Date;
  /** The state's inode (its RAM file's name). */
  ino: number;
}

export async function listSnapshots(): Promise<SavedSnapshot[]> {
  const dir = snapshotDir();
  const names = await readdir(dir).catch(() => [] as string[]);
  const found = await Promise.all(names.filter((n) => n.endsWith('.state')).map(async (name) => {
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (!st) return undefined;
    const memory = await stat(snapshotMemoryPath(join(dir, name), st.ino)).catch(() => undefined);
    const memoryBytes = memory ? Math.min(memory.size, memory.blocks * 512) : 0;
    return { key: name.slice(0, -'.state'.length), bytes: st.size + memoryBytes, lastUsed: st.mtime, ino: st.ino };
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
  // Left behind by a save that was killed half-way; notes whose state is gone; RAM files of
  // replaced states (a VM restored from one may still be opening it: only old ones go).
  const stateKeys = new Set(states.map((s) => s.key));
  const liveMemory = new Set(states.filter((s) => !removed.includes(s.key)).map((s) => basename(snapshotMemoryPath(join(dir, `${s.key}.state`), s.ino))));
  const leftovers = names.filter((n) => n.endsWith('.tmp') || (n.endsWith('.json') && !stateKeys.has(n.slice(0, -'.json'.length))) || (n.endsWith('.ram') && !liveMemory.has(n)));
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
