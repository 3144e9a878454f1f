/**
 * QEMU as a child process. Spawned with node:child_process directly: QEMU is on every VM's start
 * path, and loading execa costs more than a tenth of a second of each cold run. What execa's
 * `cleanup` gave is kept: QEMU processes still running when this process exits are killed, and
 * when this process dies without a chance to (SIGKILL), each QEMU's orphan reaper ends it and
 * removes the VM's temporary directories.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { startOrphanReaper } from './orphan-reaper.js';

export interface QemuExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export interface QemuProcess {
  readonly pid: number | undefined;
  /** Resolves when QEMU has exited (never rejects). */
  readonly exited: Promise<QemuExit>;
  readonly running: boolean;
  /** What QEMU wrote on stderr so far (bounded). */
  stderr(): string;
  /**
   * Its stderr once QEMU has exited and the pipe is drained (its last words can arrive after the
   * exit event), waiting at most `timeoutMs`; what there is by then otherwise.
   */
  finalStderr(timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
  /** Kills QEMU (SIGKILL) unless it has exited, and waits for its exit. */
  stop(): Promise<QemuExit>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

const MAX_STDERR = 64 * 1024;

/**
 * @param signal kills QEMU when aborted (startVm does not use it: launchQemu answers an abort by
 *   releasing what it holds, QEMU included).
 * @param inheritFds passed to QEMU as fds 3, 4, … (e.g. a saved state for `-incoming fd:3`).
 * @param removeOnHostDeath directories to remove if this process dies while QEMU runs.
 */
export function spawnQemu(binary: string, args: readonly string[], signal?: AbortSignal, inheritFds: readonly number[] = [], removeOnHostDeath: readonly string[] = []): QemuProcess {
  installExitHook();
  const reaper = startOrphanReaper(removeOnHostDeath);
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe', ...inheritFds], ...(signal ? { signal, killSignal: 'SIGKILL' as const } : {}) });
  if (child.pid !== undefined) reaper.watch(child.pid);
  live.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < MAX_STDERR) stderr += d.toString();
  });
  const stderrClosed = new Promise<void>((resolve) => {
    if (!child.stderr) resolve();
    else child.stderr.once('close', resolve).once('error', () => resolve());
  });
  let running = true;
  const exited = new Promise<QemuExit>((resolve) => {
    const done = (exitCode: number | null, sig: NodeJS.Signals | null): void => {
      reaper.release();
      running = false;
      live.delete(child);
      resolve({ exitCode, signal: sig });
    };
    child.once('exit', done);
    child.once('error', (error) => {
      stderr += `${error.message}\n`;
      done(null, null);
    });
  });
  return {
    get pid() { return child.pid; },
    get running() { return running; },
    exited,
    stderr: () => stderr,
    finalStderr: async (timeoutMs = 1000) => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([exited, stderrClosed]),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); }),
      ]);
      clearTimeout(timer);
      return stderr;
    },
    kill: (sig = 'SIGTERM') => { if (running) child.kill(sig); },
    stop: () => {
      if (running) child.kill('SIGKILL');
      return exited;
    },
  };
}
