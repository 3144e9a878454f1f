/**
 * Saving a running VM's state to files with QEMU's migration, and restoring it (`-incoming`).
 *
 * A saved VM is two files: its RAM, and the rest (devices, CPU: ~60 KiB). The VM to be saved runs
 * with its RAM in a shared file (qemu-args.ts MemoryFile) and the `x-ignore-shared` capability
 * leaves that RAM out of the stream; while the VM is paused at the migration's end, the caller
 * copies the RAM file (`whilePaused`). A restored VM maps the saved RAM file copy-on-write: nothing
 * of it is read or copied at start-up, pages come from the page cache as the guest touches them,
 * and every VM restored from one state shares the pages none of them wrote. Measured here (TCG):
 * the save 150 → ~10 ms, a restored idle VM's resident set 99 → 64 MiB.
 *
 * Saving: QEMU 7.2 has no `file:` migration target, and `exec:` is forbidden by our seccomp
 * sandbox (spawn=deny), so QEMU migrates to a Unix socket we listen on and we write the stream to
 * the file. The socket is handed to QEMU's user, because QEMU has dropped its privileges
 * (-runas) by the time it connects. Migration pauses the VM at its end; it is continued afterwards.
 *
 * Restoring: QEMU starts with `-incoming defer`, because the capability must be set on both sides
 * and QEMU 7.2 offers no command-line property for it; then the state file, opened here and handed
 * to QEMU as fd 3, is loaded (`migrate-incoming fd:3`) and the guest runs as soon as it is.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { chmod, lchown, rename, rm, stat } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { dir as tempDir } from 'tmp-promise';
import { GvmiTestError } from '../errors.js';
import { escapeOption } from './qemu-args.js';
import type { QmpClient } from './qmp-client.js';
import type { QemuUser } from './qemu-user.js';

/** The fd number a restored QEMU reads its state from (stdin, stdout, stderr come first). */
export const INCOMING_STATE_FD = 3;

/** The saved state is loaded once QMP has set the capabilities (restoreVmState). */
export function incomingArgs(): string[] {
  return ['-incoming', 'defer'];
}

/** RAM in a shared file is not in the stream: its file is saved (and restored) as a file. */
const IGNORE_SHARED = [{ capability: 'x-ignore-shared', state: true }];

/** Tells a QEMU started with incomingArgs() to load the state handed to it as INCOMING_STATE_FD. */
export async function restoreVmState(qmp: QmpClient): Promise<void> {
  await qmp.execute('migrate-set-capabilities', { capabilities: IGNORE_SHARED });
  await qmp.execute('migrate-incoming', { uri: `fd:${INCOMING_STATE_FD}` });
}

/** QMP on a socket we listen on (QEMU connects at start, as it does for the agent channel). */
export function monitorArgs(socketPath: string): string[] {
  return ['-chardev', `socket,id=qmp,path=${escapeOption(socketPath)}`, '-mon', 'chardev=qmp,mode=control'];
}

export interface SavedState {
  bytes: number;
  ms: number;
}

/** The RAM file saved while the VM was paused: its size on disk, and how to take it back. */
export interface SavedMemory {
  bytes: number;
  discard(): Promise<void>;
}

interface MigrationStatus {
  status?: string;
  'error-desc'?: string;
}

function migrationFailed(status: MigrationStatus): GvmiTestError {
  return new GvmiTestError('snapshot.failed', `QEMU could not save the VM state: ${status['error-desc'] ?? status.status ?? 'unknown'}`);
}

const ACTIVE_STATES = new Set(['setup', 'active', 'pre-switchover', 'device', 'cancelling', 'postcopy-active', 'wait-unplug']);
const CANCEL_WAIT_MS = 5000;

/**
 * Writes the VM's state but its shared RAM to `temporaryPath`; then, the VM still paused,
 * `whilePaused` saves the RAM file (discarded again if the save fails after); renames the state to
 * `finalPath`, and lets the VM run on. On failure (including the deadline) the migration is
 * cancelled, nothing is left at either path, and the VM runs on all the same.
 */
export async function saveVmState(qmp: QmpClient, temporaryPath: string, finalPath: string, qemuUser: QemuUser | undefined, timeoutMs: number, whilePaused: (temporaryPath: string) => Promise<SavedMemory>): Promise<SavedState> {
  const started = performance.now();
  // Root-owned and not listable: QEMU's user may walk in and connect, but nobody else sharing
  // that user can replace the socket with a link for us to chown.
  const socketDir = await tempDir({ prefix: 'gvmi-migrate-', unsafeCleanup: true, mode: 0o700 });
  if (qemuUser) await chmod(socketDir.path, 0o711);
  const socketPath = join(socketDir.path, 'state.sock');
  const server = createServer();
  let timer: NodeJS.Timeout | undefined;
  let socket: Socket | undefined;
  let migrating = false;
  let failed = false;
  let savedMemory: SavedMemory | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GvmiTestError('snapshot.failed', `saving the VM state took over ${timeoutMs} ms`)), timeoutMs);
  });
  timeout.catch(() => {}); // raced below at every step; never left unhandled
  const inTime = <T>(step: Promise<T>): Promise<T> => Promise.race([step, timeout]);
  const status = async (): Promise<MigrationStatus> => (await inTime(qmp.execute('query-migrate'))) as MigrationStatus;
  try {
    server.listen(socketPath);
    await inTime(once(server, 'listening'));
    // Connecting needs write permission on the socket itself: it becomes QEMU's user's alone.
    if (qemuUser) await lchown(socketPath, qemuUser.uid, qemuUser.gid);
    await chmod(socketPath, 0o600);
    const connected = once(server, 'connection') as Promise<[Socket]>;
    connected.catch(() => {});
    // The default cap (128 MiB/s) is for live migration over a network; this is a local file.
    await inTime(qmp.execute('migrate-set-parameters', { 'max-bandwidth': Number.MAX_SAFE_INTEGER }));
    await inTime(qmp.execute('migrate-set-capabilities', { capabilities: IGNORE_SHARED }));
    // Not stopped first: the saved run state is restored too, and a state saved paused would
    // restore paused. An idle guest dirties little, so the live pass ends almost at once.
    await inTime(qmp.execute('migrate', { uri: `unix:${socketPath}` }));
    migrating = true;
    // QEMU reports a failure to connect only through the migration status.
    let connectedOrFailed = false;
    const failedFirst = (async (): Promise<never> => {
      while (!connectedOrFailed) {
        await new Promise((r) => setTimeout(r, 20));
        const s = await status();
        if (s.status === 'failed' || s.status === 'cancelled') throw migrationFailed(s);
      }
      return new Promise<never>(() => {});
    })();
    failedFirst.catch(() => {}); // may fail after the race is over: handled here
    [socket] = await inTime(Promise.race([connected, failedFirst])).finally(() => { connectedOrFailed = true; });
    server.close(); // one connection: QEMU's
    await inTime(pipeline(socket, createWriteStream(temporaryPath, { mode: 0o600 })));
    // The stream ended; QEMU says whether it ended because the state was complete (a stranger's
    // connection could end a stream too, but not complete QEMU's migration).
    for (;;) {
      const s = await status();
      if (s.status === 'completed') break;
      if (s.status === 'failed' || s.status === 'cancelled') throw migrationFailed(s);
      await new Promise((r) => setTimeout(r, 5));
    }
    // Paused ("postmigrate") until cont below: the RAM file holds exactly the state's RAM.
    const copying = whilePaused(temporaryPath);
    try {
      savedMemory = await inTime(copying);
    } catch (error) {
      // Past the deadline the copy goes on; what it leaves is removed once it is done.
      await copying.then((m) => m.discard(), () => {});
      throw error;
    }
    const { size } = await stat(temporaryPath);
    await rename(temporaryPath, finalPath);
    return { bytes: size + savedMemory.bytes, ms: Math.round(performance.now() - started) };
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    clearTimeout(timer);
    socket?.destroy();
    server.close();
    if (migrating && failed) await cancelMigration(qmp);
    if (failed) await rm(temporaryPath, { force: true });
    if (failed) await savedMemory?.discard().catch(() => {});
    await socketDir.cleanup().catch(() => {});
    // After a completed migration the source VM is paused ("postmigrate"); after a cancelled one
    // it may be too. cont lets it run on either way.
    if (migrating) await qmp.execute('cont').catch(() => {});
  }
}

/** Cancels a migration and waits until QEMU has left it, so that cont is not undone later. */
async function cancelMigration(qmp: QmpClient): Promise<void> {
  await qmp.execute('migrate_cancel').catch(() => {});
  const deadline = Date.now() + CANCEL_WAIT_MS;
  while (Date.now() < deadline) {
    const s = (await qmp.execute('query-migrate').catch(() => undefined)) as MigrationStatus | undefined;
    if (!s || !ACTIVE_STATES.has(s.status ?? '')) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}
