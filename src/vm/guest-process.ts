/**
 * A process running in the guest: live output as events and as an async iterable, stdin, signals,
 * and the final result. Created by the process layer (process-runner.ts); the link to the guest
 * feeds it through its sink (process-transport.ts).
 *
 * Events wait for their first listener, the one place where output order is kept: the caller
 * gets this object only once spawn() has settled, and by then the guest may have sent output and
 * even the exit (they can come in the same read as the answer that started the process). So
 * nothing is emitted until a listener for 'stdout', 'stderr' or 'exit' is attached; once the code
 * attaching it has run to its end (one microtask, no timer), everything held is emitted in the
 * order it came, and later events as they come. Listeners attached later get only what comes
 * after. Waiting for the result first says no listener is coming: what is held is let go. At most
 * HOLD_LIMIT_BYTES of output are held.
 */
import { EventEmitter } from 'node:events';
import { GvmiTestError } from '../errors.js';
import { signalNumber } from '../signals.js';
import type { ExecResult } from './exec-result.js';
import type { ProcessControl, ProcessSink } from './process-transport.js';

export { signalName, signalNumber } from '../signals.js';
export type { ExecFailure, ExecResult } from './exec-result.js';

export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

export interface GuestProcessEvents {
  stdout: [data: Buffer];
  stderr: [data: Buffer];
  exit: [result: ExecResult];
}

/** Output held for listeners not attached yet, at most. */
export const HOLD_LIMIT_BYTES = 1024 * 1024;

/** The process and the handles its creator keeps: the sink for the link, and its start. */
export interface GuestProcessWiring {
  process: GuestProcess;
  sink: ProcessSink;
  /** The guest accepted it: its id and controls. */
  started(id: bigint, control: ProcessControl): void;
  /** The process layer killed it at its deadline. */
  timedOut(): void;
}

const NOT_STARTED: ProcessControl = {
  signal: async () => { throw new GvmiTestError('usage', 'the process has not started'); },
  putInput: async () => { throw new GvmiTestError('usage', 'the process has not started'); },
};

export class GuestProcess extends EventEmitter<GuestProcessEvents> {
  readonly result: Promise<ExecResult>;
  private resolveResult!: (r: ExecResult) => void;
  private rejectResult!: (e: Error) => void;
  private processId = 0n;
  private control: ProcessControl = NOT_STARTED;
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  private stdoutBytes = 0;
  private stderrBytes = 0;
  private kept = 0;
  private truncated = false;
  private readonly started = performance.now();
  private finished = false;
  private killedAtDeadline = false;
  private readonly queue: OutputChunk[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private execFailure: ExecResult['execFailure'] = null;
  /** Events waiting for their first listener; undefined once let go. */
  private held: (() => void)[] | undefined = [];
  private heldBytes = 0;

  /** A process, its sink and its start (used by the process layer). */
  static create(command: string[], maxBuffer: number, iterate: boolean): GuestProcessWiring {
    const process = new GuestProcess(command, maxBuffer, iterate);
    return {
      process,
      sink: {
        output: (stream, data) => process.onOutput(stream, data),
        execFailed: (failure) => { process.execFailure = failure; },
        exited: (exit) => process.onExit(exit),
        lost: (error) => process.onLost(error),
      },
      started: (id, control) => {
        process.processId = id;
        process.control = control;
      },
      timedOut: () => { process.killedAtDeadline = true; },
    };
  }

  private constructor(
    readonly command: string[],
    private readonly maxBuffer: number,
    private readonly iterate: boolean,
  ) {
    super();
    this.result = new Promise((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    this.result.catch(() => {}); // observed through wait(); never an unhandled rejection
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (this.held && (event === 'stdout' || event === 'stderr' || event === 'exit')) queueMicrotask(() => this.letGo());
    });
  }

  /** The guest's id for the process (0 for a served VM's). */
  get id(): bigint {
    return this.processId;
  }

  get done(): boolean {
    return this.finished;
  }

  /** Set when the process was killed at its deadline (timeoutMs). */
  get timedOut(): boolean {
    return this.killedAtDeadline;
  }

  /** Emits what is held, in order; from now on events are emitted as they come. */
  private letGo(): void {
    const held = this.held;
    this.held = undefined;
    for (const emit of held ?? []) emit();
  }

  private deliver(emit: () => void, bytes = 0): void {
    if (!this.held) {
      emit();
      return;
    }
    if (bytes > 0 && this.heldBytes + bytes > HOLD_LIMIT_BYTES) return;
    this.heldBytes += bytes;
    this.held.push(emit);
  }

  private onOutput(stream: 'stdout' | 'stderr', data: Buffer): void {
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
    this.deliver(() => this.emit(stream, data), data.length);
  }

  private onExit(exit: { exitCode: number | null; signal: string | null; timedOut?: boolean }): void {
    if (this.finished) return;
    this.finished = true;
    if (exit.timedOut) this.killedAtDeadline = true;
    const result: ExecResult = {
      command: this.command,
      exitCode: exit.exitCode,
      signal: exit.signal,
      stdout: Buffer.concat(this.out).toString('utf8'),
      stderr: Buffer.concat(this.err).toString('utf8'),
      stdoutBytes: this.stdoutBytes,
      stderrBytes: this.stderrBytes,
      truncated: this.truncated,
      durationMs: Math.round(performance.now() - this.started),
      timedOut: this.killedAtDeadline,
      execFailure: this.execFailure,
    };
    this.deliver(() => this.emit('exit', result));
    this.resolveResult(result);
    this.wake?.();
  }

  private onLost(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = error;
    this.rejectResult(error);
    this.wake?.();
  }

  /** The result; called before any listener is attached, it lets go of the events held for them. */
  wait(): Promise<ExecResult> {
    if (this.held && this.listenerCount('stdout') + this.listenerCount('stderr') + this.listenerCount('exit') === 0) {
      this.held = undefined;
    }
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
