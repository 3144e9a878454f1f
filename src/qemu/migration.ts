/**
 * Saving a running VM's state to a file with QEMU's migration, and restoring it (`-incoming`).
 *
 * Saving: QEMU 7.2 has no `file:` migration target, and `exec:` is forbidden by our seccomp
 * sandbox (spawn=deny), so QEMU migrates to a Unix socket we listen on and we write the stream to
 * the file. The socket lives in a directory of its own owned by QEMU's user, because QEMU has
 * dropped its privileges (-runas) by the time it connects. Migration pauses the VM at its end; it
 * is continued afterwards.
 *
 * Restoring: the state file is opened here and handed to QEMU as fd 3 (`-incoming fd:3`); QEMU
 * reads it at start-up and runs the guest as soon as it is loaded.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { chown, rename, rm, stat } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { dir as tempDir } from 'tmp-promise';
import { GvmiTestError } from '../errors.js';
import type { QmpClient } from './qmp-client.js';
import type { QemuUser } from './qemu-user.js';

/** The fd number a restored QEMU reads its state from (stdin, stdout, stderr come first). */
export const INCOMING_STATE_FD = 3;

export function incomingArgs(): string[] {
  return ['-incoming', `fd:${INCOMING_STATE_FD}`];
}

/** QMP on a socket we listen on (QEMU connects at start, as it does for the agent channel). */
export function monitorArgs(socketPath: string): string[] {
  return ['-chardev', `socket,id=qmp,path=${socketPath.replaceAll(',', ',,')}`, '-mon', 'chardev=qmp,mode=control'];
}

export interface SavedState {
  bytes: number;
  ms: number;
}

interface MigrationStatus {
  status?: string;
  'error-desc'?: string;
}

function migrationFailed(status: MigrationStatus): GvmiTestError {
  return new GvmiTestError('snapshot.failed', `QEMU could not save the VM state: ${status['error-desc'] ?? status.status ?? 'unknown'}`);
}

/**
 * Stops the VM, writes its whole state to `temporaryPath`, renames it to `finalPath`, and lets the
 * VM run on. On failure nothing is left at either path and the VM runs on all the same.
 */
export async function saveVmState(qmp: QmpClient, temporaryPath: string, finalPath: string, qemuUser: QemuUser | undefined, timeoutMs: number): Promise<SavedState> {
  const started = performance.now();
  const socketDir = await tempDir({ prefix: 'gvmi-migrate-', unsafeCleanup: true, mode: 0o700 });
  if (qemuUser) await chown(socketDir.path, qemuUser.uid, qemuUser.gid);
  const socketPath = join(socketDir.path, 'state.sock');
  const server = createServer();
  let timer: NodeJS.Timeout | undefined;
  let migrating = false;
  try {
    server.listen(socketPath);
    await once(server, 'listening');
    // Connecting needs write permission on the socket itself, not only on its directory.
    if (qemuUser) await chown(socketPath, qemuUser.uid, qemuUser.gid);
    const connected = once(server, 'connection') as Promise<[Socket]>;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GvmiTestError('snapshot.failed', `saving the VM state took over ${timeoutMs} ms`)), timeoutMs);
    });
    // The default cap (128 MiB/s) is for live migration over a network; this is a local file.
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': Number.MAX_SAFE_INTEGER });
    // Not stopped first: the saved run state is restored too, and a state saved paused would
    // restore paused. An idle guest dirties little, so the live pass ends almost at once.
    await qmp.execute('migrate', { uri: `unix:${socketPath}` });
    migrating = true;
    // QEMU reports a failure to connect only through the migration status.
    let connectedOrFailed = false;
    const failedFirst = (async (): Promise<never> => {
      while (!connectedOrFailed) {
        await new Promise((r) => setTimeout(r, 20));
        const status = (await qmp.execute('query-migrate')) as MigrationStatus;
        if (status.status === 'failed' || status.status === 'cancelled') throw migrationFailed(status);
      }
      return new Promise<never>(() => {});
    })();
    failedFirst.catch(() => {}); // may fail after the race is over: handled here
    const [socket] = await Promise.race([connected, failedFirst, timeout]).finally(() => { connectedOrFailed = true; });
    await Promise.race([pipeline(socket, createWriteStream(temporaryPath, { mode: 0o600 })), timeout]);
    // The stream ended; QEMU says whether it ended because the state was complete.
    for (;;) {
      const status = (await Promise.race([qmp.execute('query-migrate'), timeout])) as MigrationStatus;
      if (status.status === 'completed') break;
      if (status.status === 'failed' || status.status === 'cancelled') throw migrationFailed(status);
      await new Promise((r) => setTimeout(r, 5));
    }
    const { size } = await stat(temporaryPath);
    await rename(temporaryPath, finalPath);
    return { bytes: size, ms: Math.round(performance.now() - started) };
  } catch (error) {
    await rm(temporaryPath, { force: true });
    throw error;
  } finally {
    clearTimeout(timer);
    server.close();
    await socketDir.cleanup().catch(() => {});
    // After a completed migration the source VM is paused ("postmigrate"); cont lets it run on.
    if (migrating) await qmp.execute('cont').catch(() => {});
  }
}
