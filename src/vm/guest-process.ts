/**
 * A process running in the guest: live output as events and as an async iterable, stdin, signals,
 * and the final result. Created by StartedVm.spawn.
 */
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { GvmiTestError } from '../errors.js';
import { ExitKind } from '../agent/protocol.js';

export interface ExecResult {
  command: string[];
  /** The exit status, or null when a signal ended the process. */
  exitCode: number | null;
  /** The signal's name (e.g. "SIGKILL") when one ended the process. */
  signal: string | null;
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
  /** More output came than `maxBuffer` keeps; the byte counts are still exact. */
  truncated: boolean;
  durationMs: number;
  timedOut: boolean;
  /**
   * Set when the process could not start (a missing program, interpreter or working directory):
   * its exit code is then 9, all a provider's requestor would see; this says what really failed.
   */
  execFailure: { step: string; errno: number; errnoName: string; cwd: string } | null;
}

export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

export interface GuestProcessEvents {
  stdout: [data: Buffer];
  stderr: [data: Buffer];
  exit: [result: ExecResult];
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

export function signalName(n: number): string {
  return SIGNAL_NAMES.get(n) ?? `SIG${n}`;
}

export function signalNumber(name: string | number): number {
  if (typeof name === 'number') return name;
  const n = (constants.signals as Record<string, number>)[name.startsWith('SIG') ? name : `SIG${name}`];
  if (n === undefined) throw new GvmiTestError('usage', `unknown signal ${name}`);
  return n;
}

export interface GuestProcessControl {
  signal(signo: number): Promise<void>;
  putInput(data: Buffer, eof: boolean): Promise<void>;
  resize?(rows: number, cols: number): Promise<void>;
}

export class GuestProcess extends EventEmitter<GuestProcessEvents> {
  readonly result: Promise<ExecResult>;
  private resolveResult!: (r: ExecResult) => void;
  private rejectResult!: (e: Error) => void;
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  private stdoutBytes = 0;
  private stderrBytes = 0;
  private kept = 0;
  private truncated = false;
  private readonly started = performance.now();
  private finished = false;
  timedOut = false;
  private readonly queue: OutputChunk[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private execFailure: ExecResult['execFailure'] = null;

  constructor(
    readonly id: bigint,
    readonly command: string[],
    private readonly control: GuestProcessControl,
    private readonly maxBuffer: number,
    private readonly iterate: boolean,
  ) {
    super();
    this.result = new Promise((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    this.result.catch(() => {}); // observed through wait(); never an unhandled rejection
    this.holdOneTurn();
  }

  get done(): boolean {
    return this.finished;
  }

  /**
   * Output that arrives before the caller had a turn to attach listeners (the RUN_PROCESS reply,
   * the output and the death of a short process can come in one read) is held, then delivered,
   * in order, on the next turn of the event loop; so is the exit. Bounded: one turn's worth.
   */
  private held: (() => void)[] | undefined;

  /** @internal hold events until the caller's next turn (see `held`). */
  holdOneTurn(): void {
    if (this.held) return;
    this.held = [];
    setImmediate(() => {
      const held = this.held ?? [];
      this.held = undefined;
      for (const deliver of held) deliver();
    });
  }

  private deliver(fn: () => void): void {
    if (this.held) this.held.push(fn);
    else fn();
  }

  /** @internal called by StartedVm as output arrives */
  pushOutput(fd: number, data: Buffer): void {
    const stream = fd === 2 ? 'stderr' : 'stdout';
    if (stream === 'stdout') this.stdoutBytes += data.length;
    else this.stderrBytes += data.length;
    if (this.kept + data.length <= this.maxBuffer) {
      (stream === 'stdout' ? this.out : this.err).push(data);
      this.kept += data.length;
    } else {
      this.truncated = true;
    }
    if (this.iterate) {
      this.queue.push({ stream, data });
      this.wake?.();
    }
    this.deliver(() => this.emit(stream, data));
  }

  /** @internal called by StartedVm on NOTIFY_EXEC_FAILED (before the process's death) */
  setExecFailure(failure: NonNullable<ExecResult['execFailure']>): void {
    this.execFailure = failure;
  }

  /** @internal called by StartedVm on NOTIFY_PROCESS_DIED */
  finish(status: number, kind: number): void {
    if (this.finished) return;
    this.finished = true;
    this.deliver(() => this.settle(status, kind));
  }

  private settle(status: number, kind: number): void {
    const killed = kind !== ExitKind.EXITED;
    const result: ExecResult = {
      command: this.command,
      exitCode: killed ? null : status,
      signal: killed ? signalName(status) : null,
      stdout: Buffer.concat(this.out).toString('utf8'),
      stderr: Buffer.concat(this.err).toString('utf8'),
      stdoutBytes: this.stdoutBytes,
      stderrBytes: this.stderrBytes,
      truncated: this.truncated,
      durationMs: Math.round(performance.now() - this.started),
      timedOut: this.timedOut,
      execFailure: this.execFailure,
    };
    this.emit('exit', result);
    this.resolveResult(result);
    this.wake?.();
  }

  /** @internal the VM went away under the process */
  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = error;
    this.rejectResult(error);
    this.wake?.();
  }

  wait(): Promise<ExecResult> {
    return this.result;
  }

  /** Sends a signal to the process's group (default SIGTERM). */
  async kill(signal: string | number = 'SIGTERM'): Promise<void> {
    if (this.finished) return;
    await this.control.signal(signalNumber(signal)).catch((error: unknown) => {
      if (!this.finished) throw error;
    });
  }

  async write(data: string | Buffer): Promise<void> {
    await this.control.putInput(typeof data === 'string' ? Buffer.from(data) : data, false);
  }

  async end(data?: string | Buffer): Promise<void> {
    await this.control.putInput(data === undefined ? Buffer.alloc(0) : typeof data === 'string' ? Buffer.from(data) : data, true);
  }

  /** The window size of the process's terminal (spawned with `pty`); it gets SIGWINCH. */
  async resize(rows: number, cols: number): Promise<void> {
    if (!this.control.resize) throw new GvmiTestError('usage', 'this process has no terminal');
    await this.control.resize(rows, cols);
  }

  /** Output chunks in order as they arrive, until the process ends. */
  async *[Symbol.asyncIterator](): AsyncGenerator<OutputChunk> {
    if (!this.iterate) throw new GvmiTestError('usage', 'spawn(..., { iterate: true }) to iterate over output');
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.finished) return;
      await new Promise<void>((resolve) => { this.wake = resolve; });
      this.wake = undefined;
    }
  }
}
