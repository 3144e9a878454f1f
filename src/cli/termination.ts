/**
 * How the CLI ends when it is told to: on SIGINT, SIGTERM or SIGHUP, or when its output pipe is
 * closed (`gvmi-test run … | head -2`). Whatever the command is waiting for, every VM it started is
 * stopped first — the guest powered off, QEMU gone, the temporary directories removed — and only
 * then does the process exit, with the status a shell shows for a process killed by that signal:
 * 128+N (130, 143, 129; 141, SIGPIPE's, for a closed pipe, as `yes | head -1` shows).
 *
 * A second signal while VMs stop ends the process at once; the orphan reaper
 * (src/qemu/orphan-reaper.ts) then kills QEMU and removes the directories, as it does when the
 * process is SIGKILLed.
 *
 * Only the CLI's entry point (main.ts) installs the handlers: a program that drives `runCli` in
 * process (the unit tests) keeps its own signal handling.
 */
import { EXIT, signalStatus } from './exit-codes.js';

const OUTPUT_FAILED = EXIT.transfer; // EX_IOERR

export const TERMINATION_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type TerminationSignal = (typeof TERMINATION_SIGNALS)[number];

interface Stopper {
  stop: () => Promise<void>;
  /** true once there is nothing left to stop (the entry is then dropped) */
  done?: () => boolean;
}

const stoppers = new Set<Stopper>();
const diversions = new Set<{ signals: readonly TerminationSignal[]; handler: (signal: TerminationSignal) => void }>();
let ending: number | undefined;
const exitProcess = (status: number): void => process.exit(status);

/** The status the process is ending with, once a signal or a closed output has ended it. */
export function terminationStatus(): number | undefined {
  return ending;
}

/**
 * Registers what to stop before the process exits on a signal. Returns the function that
 * unregisters it.
 */
export function onTermination(stop: () => Promise<void>, done?: () => boolean): () => void {
  for (const s of stoppers) if (s.done?.()) stoppers.delete(s);
  const entry: Stopper = { stop, ...(done ? { done } : {}) };
  stoppers.add(entry);
  return () => void stoppers.delete(entry);
}

/**
 * Starts something that must be stopped if the process is told to end: a VM (`stop()` powers it
 * off and removes its directories). Told to end while it starts, the start is aborted through
 * the signal it was given, and the process exits once the start has rolled back.
 */
export async function startStoppable<T extends { stop(): Promise<void>; readonly stopped?: boolean }>(
  start: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (ending !== undefined) throw new Error('the process is ending: nothing more is started');
  const abort = new AbortController();
  let started: T | undefined;
  const starting = start(abort.signal);
  const unregister = onTermination(async () => {
    if (started) return started.stop();
    abort.abort();
    // The start removes what it made before it rejects; it may also have won the race.
    const late = await starting.catch(() => undefined);
    await late?.stop();
  }, () => started?.stopped === true);
  try {
    started = await starting;
  } catch (error) {
    unregister();
    throw error;
  }
  return started;
}

/**
 * While registered, `signals` go to `handler` instead of ending the process: `exec` passes Ctrl-C
 * to the guest command, `serve` stops serving in its own order. Returns the function that
 * unregisters it.
 */
export function divertSignals(signals: readonly TerminationSignal[], handler: (signal: TerminationSignal) => void): () => void {
  const entry = { signals, handler };
  diversions.add(entry);
  return () => void diversions.delete(entry);
}

/** Ends the process with `status` once everything registered has stopped; called again, at once. */
export function terminate(status: number, { repeatEndsAtOnce = true }: { repeatEndsAtOnce?: boolean } = {}): void {
  if (ending !== undefined) {
    if (repeatEndsAtOnce) exitProcess(ending);
    return;
  }
  ending = status;
  const stopping = [...stoppers].map((s) => s.stop().catch(() => {}));
  stoppers.clear();
  void Promise.all(stopping).then(() => exitProcess(status));
}

function onSignal(signal: TerminationSignal): void {
  if (ending === undefined) {
    const diverted = [...diversions].filter((d) => d.signals.includes(signal));
    if (diverted.length > 0) {
      for (const d of diverted) d.handler(signal);
      return;
    }
  }
  terminate(signalStatus(signal));
}

/**
 * What to do when stdout or stderr fails: a closed pipe (EPIPE) ends the process as SIGPIPE ends
 * a Unix tool, quietly with 141; another error (a full disk) is said on the other stream when it
 * still works, and ends the process with 74 (EX_IOERR).
 */
function onOutputError(error: NodeJS.ErrnoException, name: string, other: NodeJS.WritableStream): void {
  if (error.code === 'EPIPE') {
    terminate(signalStatus('SIGPIPE'), { repeatEndsAtOnce: false });
    return;
  }
  if (ending === undefined) {
    try {
      other.write(`gvmi-test: cannot write to ${name}: ${error.message}\n`);
    } catch { /* that one failed too */ }
  }
  terminate(OUTPUT_FAILED, { repeatEndsAtOnce: false });
}

/** Installs the handlers (once, by the CLI's entry point). */
export function installTerminationHandlers(): void {
  for (const signal of TERMINATION_SIGNALS) process.on(signal, onSignal);
  process.stdout.on('error', (error: NodeJS.ErrnoException) => onOutputError(error, 'stdout', process.stderr));
  process.stderr.on('error', (error: NodeJS.ErrnoException) => onOutputError(error, 'stderr', process.stdout));
}
