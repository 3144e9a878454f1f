/** Signals by name and number, and the status a shell reports for a process a signal ended. */
import { constants } from 'node:os';
import { GvmiTestError } from './errors.js';

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

export function signalName(n: number): string {
  return SIGNAL_NAMES.get(n) ?? `SIG${n}`;
}

/** A signal's number from its name, with or without SIG (`usage` for a name Linux does not have). */
export function signalNumber(name: string | number): number {
  if (typeof name === 'number') return name;
  const n = (constants.signals as Record<string, number>)[name.startsWith('SIG') ? name : `SIG${name}`];
  if (n === undefined) throw new GvmiTestError('usage', `unknown signal ${name}`);
  return n;
}

/** 128 + N, as a shell reports a process ended by signal N (137 for SIGKILL). */
export function signalStatus(signal: string | number): number {
  return 128 + signalNumber(signal);
}

/** A process's status as a shell reports it: its exit code, or 128 + N when signal N ended it. */
export function shellStatus(outcome: { exitCode: number | null; signal: string | null }): number {
  return outcome.exitCode ?? signalStatus(outcome.signal ?? 'SIGKILL');
}
