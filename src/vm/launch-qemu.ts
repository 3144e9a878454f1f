/**
 * One QEMU process from spawn until its guest agent answers: either a boot (wait for the agent's
 * READY) or a restore from a saved state (send RESUMED; its answer means the guest runs). Failure
 * on the way kills that QEMU and throws an error explained from the console and QEMU's stderr.
 * What it returns holds QEMU and its channels in one ResourceStack, the only place QEMU is killed.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { AgentClient } from '../agent/agent-client.js';
import { PROTO_EXTENSION_CLOCK } from '../agent/protocol.js';
import { GvmiTestError } from '../errors.js';
import { incomingArgs, monitorArgs, restoreVmState } from '../qemu/migration.js';
import { QmpClient } from '../qemu/qmp-client.js';
import { spawnQemu, type QemuExit, type QemuProcess } from '../qemu/qemu-process.js';
import { GUEST_CLOCK_BOUND_NS, hostRealtimeClock, syncGuestClock, type GuestClockSync } from './guest-clock.js';
import { bootError, crashError, withQemuStderr } from './vm-failures.js';
import { ResourceStack } from './resource-stack.js';

export type LaunchMode =
  | { kind: 'boot'; /** Also open QMP (needed to save a snapshot after the boot). */ monitor: boolean }
  | {
    kind: 'restore';
    statePath: string;
    /** The state's inode: its RAM file (in the arguments) belongs to that file alone. */
    stateIno: number;
    /** The RAM file the arguments map (snapshot-store.ts snapshotMemoryPath). */
    memoryPath: string;
  };

export interface LaunchRequest {
  qemuPath: string;
  /** The QEMU arguments; the agent channel must connect to `agentSocket`, the console go to `consoleLog`. */
  args: readonly string[];
  agentSocket: string;
  /** Where QMP connects when mode.monitor is set. */
  monitorSocket: string;
  consoleLog: string;
  mode: LaunchMode;
  timeoutMs: number;
  logger: Logger;
  signal?: AbortSignal;
  /** Directories to remove should this process die while QEMU runs (see orphan-reaper). */
  removeOnHostDeath?: readonly string[];
}

export interface LaunchedQemu {
  proc: QemuProcess;
  client: AgentClient;
  /** Set when the request asked for a monitor. */
  qmp?: QmpClient;
  /** QEMU (killed unless it has exited) and its channels: released by whoever owns the VM. */
  resources: ResourceStack;
  /** From now on the agent channel closing means the VM was stopped, not that it crashed. */
  markStopping(): void;
}

/** How long a failed boot step waits for QEMU to exit, to report that (and its stderr) instead. */
const STEP_FAILURE_EXIT_WAIT_MS = 1000;

/** How often to look for QEMU's agent socket while it is not there yet (the Rust host: 1 s). */
const CONNECT_RETRY_MS = 5;

/**
 * Connects to the agent socket QEMU listens on (server=on,wait=off), retrying while it is not
 * there yet, as the Rust host does. Never settles once `stop()` was called.
 */
function connectAgent(path: string): { connected: Promise<Socket>; stop: () => void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const connected = new Promise<Socket>((resolve) => {
    const attempt = (): void => {
      if (stopped) return;
      const socket = createConnection(path);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        if (stopped) socket.destroy();
        else resolve(socket);
      });
      socket.once('error', () => {
        socket.destroy();
        timer = setTimeout(attempt, CONNECT_RETRY_MS);
      });
    };
    attempt();
  });
  return { connected, stop: () => { stopped = true; clearTimeout(timer); } };
}

async function listen(path: string): Promise<Server> {
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  await chmod(path, 0o600);
  return server;
}

/**
 * RESUMED: the host's clock and fresh entropy, for a guest whose clock and random state are a
 * snapshot's; then CLOCK round trips bring the guest's clock to within a few ms of the host's,
 * however long RESUMED waited in queues on a loaded host (guest-clock.ts). HELLO first: the agent
 * says its extension version, and one older than CLOCK (a stale runtime build) would stop the VM
 * at an unknown type; RESUMED, which every version knows, goes with it.
 */
export async function refreshGuest(client: AgentClient, timeoutMs?: number, logger?: Logger): Promise<GuestClockSync | undefined> {
  // Sent back to back (every agent that answers HELLO knows RESUMED): one round trip, not two.
  const now = hostRealtimeClock();
  const [version] = await Promise.all([client.hello(timeoutMs), client.resumed(now(), randomBytes(64), timeoutMs)]);
  if (version < PROTO_EXTENSION_CLOCK) {
    logger?.warn({ extensionVersion: version }, 'the guest agent predates CLOCK: its clock is only as close as RESUMED set it (run `make runtime`)');
    return undefined;
  }
  const clock = await syncGuestClock((step) => client.clock(step, timeoutMs), now);
  if (clock.converged) logger?.debug({ clock }, 'guest clock set');
  else logger?.warn({ clock }, `guest clock set, but no round trip was short enough to prove it within ${GUEST_CLOCK_BOUND_NS / 1e6} ms of the host's`);
  return clock;
}

export async function launchQemu(request: LaunchRequest): Promise<LaunchedQemu> {
  const { mode, logger, consoleLog } = request;
  const resources = new ResourceStack();
  let watchdog: NodeJS.Timeout | undefined;
  let proc: QemuProcess | undefined;
  try {
    let monitorConnection: Promise<[Socket]> | undefined;
    let monitorServer: Server | undefined;
    const extraArgs: string[] = [];
    // A restore needs QMP too: the state is loaded once the migration capabilities are set.
    if ((mode.kind === 'boot' && mode.monitor) || mode.kind === 'restore') {
      const server = resources.adopt(await listen(request.monitorSocket), (s) => { s.close(); });
      monitorServer = server;
      monitorConnection = once(server, 'connection') as Promise<[Socket]>;
      extraArgs.push(...monitorArgs(request.monitorSocket));
    }
    let stateFd: number | undefined;
    if (mode.kind === 'restore') {
      stateFd = openSync(mode.statePath, 'r');
      // Renamed over since it was found: its RAM file is another's. Not the state's fault.
      if (fstatSync(stateFd).ino !== mode.stateIno) {
        closeSync(stateFd);
        throw new GvmiTestError('snapshot.failed', `the snapshot ${mode.statePath} was replaced while it was being opened`);
      }
      extraArgs.push(...incomingArgs());
    }
    const args = [...request.args, ...extraArgs];
    logger.debug({ qemu: request.qemuPath, args }, mode.kind === 'restore' ? 'restoring QEMU from a snapshot' : 'starting QEMU');
    try {
      proc = spawnQemu(request.qemuPath, args, undefined, stateFd === undefined ? [] : [stateFd], request.removeOnHostDeath);
    } finally {
      // QEMU has its own copy of the descriptor once spawned.
      if (stateFd !== undefined) closeSync(stateFd);
    }
    // The one place a VM's QEMU is killed: when its owner releases it (a failed start, a stop
    // that did not power the guest off in time, a crash's clean-up).
    const qemu = resources.adopt(proc, async (q) => {
      if (q.running) logger.debug('killing QEMU');
      await q.stop();
    });

    const timeout = new Promise<'timeout'>((r) => { watchdog = setTimeout(() => r('timeout'), request.timeoutMs); });
    const exited = qemu.exited.then((r): { exited: QemuExit } => ({ exited: r }));
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<'aborted'>((r) => {
      onAbort = () => r('aborted');
      if (request.signal?.aborted) onAbort();
      else request.signal?.addEventListener('abort', onAbort, { once: true });
    });
    // A long-lived signal must not collect one listener per VM start.
    const forgetAbort = (): void => { if (onAbort) request.signal?.removeEventListener('abort', onAbort); };
    const what = mode.kind === 'restore' ? 'the restored guest' : 'the guest agent';
    /** Waits for `step`, or turns QEMU's exit, the deadline or an abort into an explained error. */
    const awaitStep = async <T>(step: Promise<T>, exitMessage: string): Promise<T> => {
      // Settled either way, so a step that fails after losing the race is not an unhandled rejection.
      const settled = step.then((value) => ({ value }), (error: unknown) => ({ error }));
      const outcome = await Promise.race([settled, exited, timeout, aborted]);
      if (outcome === 'timeout') throw await bootError('vm.boot-timeout', `${what} did not answer within ${request.timeoutMs} ms`, consoleLog, qemu.stderr());
      if (outcome === 'aborted') throw new GvmiTestError('vm.boot-failed', 'start aborted');
      const exitedError = async (exit: QemuExit): Promise<GvmiTestError> =>
        bootError('vm.boot-failed', `${exitMessage} (QEMU exit ${exit.exitCode ?? exit.signal})`, consoleLog, await qemu.finalStderr());
      if ('exited' in outcome) throw await exitedError(outcome.exited);
      if ('error' in outcome) {
        // A step fails first when QEMU is on its way out (its monitor or agent socket closing):
        // QEMU's exit and its own words explain it, not the closed socket.
        const exit = await Promise.race([qemu.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), STEP_FAILURE_EXIT_WAIT_MS).unref())]);
        throw exit ? await exitedError(exit) : outcome.error;
      }
      return outcome.value;
    };

    try {
      // QEMU listens on the agent socket; we connect as the Rust host does (retrying until it exists).
      const agent = connectAgent(request.agentSocket);
      resources.defer(agent.stop);
      const socket = resources.adopt(await awaitStep(agent.connected, 'QEMU exited before its agent socket opened'), (s) => { s.destroy(); });
      // Nobody else may connect to the agent (the directory is 0700 too): the name goes, QEMU keeps
      // our connection.
      await unlink(request.agentSocket).catch(() => {});
      let qmp: QmpClient | undefined;
      if (monitorConnection) {
        const [monitorSocket] = await awaitStep(monitorConnection, 'QEMU exited before its monitor connected');
        monitorServer?.close();
        qmp = resources.adopt(new QmpClient(monitorSocket), (q) => { q.close(); });
        try {
          await awaitStep(qmp.negotiate(), 'QEMU exited during monitor set-up');
        } catch (error) {
          throw error instanceof GvmiTestError && error.code !== 'snapshot.failed' ? error
            : new GvmiTestError('vm.boot-failed', `QEMU's monitor did not start: ${(error as Error).message}`, { cause: error });
        }
        if (mode.kind === 'restore') {
          try {
            await awaitStep(restoreVmState(qmp), 'QEMU exited while loading the saved state');
          } catch (error) {
            throw error instanceof GvmiTestError && error.code !== 'snapshot.failed' ? error
              : new GvmiTestError('vm.boot-failed', `QEMU refused to load the saved state: ${(error as Error).message}`, { cause: error });
          }
          // Nothing more to ask of it: a restored VM is not saved again.
          qmp.close();
          qmp = undefined;
        }
      }
      let stopping = false;
      // The channel closes first when the guest dies; QEMU's exit and the console tell why.
      const explainDisconnect = async (): Promise<GvmiTestError> => {
        if (stopping) return new GvmiTestError('vm.stopped', 'the VM has been stopped');
        const exit = await Promise.race([qemu.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref())]);
        return crashError(consoleLog, exit ? (exit.exitCode ?? exit.signal ?? 'unknown') : 'still running', exit ? await qemu.finalStderr() : qemu.stderr());
      };
      const client = new AgentClient(socket, logger, explainDisconnect);

      if (mode.kind === 'boot') {
        // The guest sends nothing unprompted (as upstream's): the HELLO is answered once its agent
        // reads the port, and switches gvmi-test's extensions on.
        const version = await awaitStep(client.hello(0), 'the guest stopped before its agent answered');
        logger.debug({ extensionVersion: version }, 'agent ready');
      } else {
        // Each restored VM must differ from its siblings: fresh clock and fresh entropy.
        await awaitStep(refreshGuest(client, request.timeoutMs, logger), 'the restored guest stopped');
        logger.debug('restored guest answered');
      }
      return { proc: qemu, client, ...(qmp ? { qmp } : {}), resources: resources.move(), markStopping: () => { stopping = true; } };
    } finally {
      forgetAbort();
    }
  } catch (error) {
    const stderr = proc ? await proc.finalStderr(proc.running ? 0 : 1000) : '';
    await resources.dispose().catch(() => {});
    throw withQemuStderr(error, stderr);
  } finally {
    clearTimeout(watchdog);
  }
}
