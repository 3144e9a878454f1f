/**
 * What the process layer (process-runner.ts) needs of a link to a guest, and what it gives back.
 * Two links implement it: the agent channel of a VM in this process (agent-transport.ts) and the
 * WebSocket connection to a served one (server/ws-client.ts). The link routes a process's events
 * to its sink from the first one on, in the order the guest sent them; the sink is the process's.
 */
import type { Finding } from '../diagnostics/finding.js';
import type { ExecFailure, ExecResult } from './exec-result.js';

export interface ProcessRequest {
  argv: string[];
  /** The program, when it is not argv[0] (start-entrypoint). */
  bin?: string;
  /** Added to (and overriding) the image's Env. */
  env?: Record<string, string>;
  /** Defaults to the image's WorkingDir. */
  cwd?: string;
  /** A stdin pipe for write()/end(); otherwise stdin is what a provider gives (empty). */
  stdin: boolean;
  pty?: { rows: number; cols: number };
  uid?: number;
  gid?: number;
}

/** Where a link delivers one process's events. */
export interface ProcessSink {
  output(stream: 'stdout' | 'stderr', data: Buffer): void;
  /** Before the exit, when the program could not be started. */
  execFailed(failure: ExecFailure): void;
  /** `timedOut`: the other side killed it at a deadline of its own. */
  exited(exit: { exitCode: number | null; signal: string | null; timedOut?: boolean }): void;
  /** The link (or the VM) went away under the process. */
  lost(error: Error): void;
}

/** One started process's controls. */
export interface ProcessControl {
  signal(signo: number): Promise<void>;
  /** Stdin; `eof` closes it after `data`. */
  putInput(data: Buffer, eof: boolean): Promise<void>;
  /** Present for a process with a terminal. */
  resize?(rows: number, cols: number): Promise<void>;
}

export interface StartedProcess<Origin> {
  /** The guest's id for the process (0 when the link does not say). */
  id: bigint;
  control: ProcessControl;
  /** What the link wants back to diagnose this process's result (the local VM: where its console stood). */
  origin: Origin;
}

export interface ProcessTransport<Origin> {
  /** Starts a process; rejects when the guest (or the server) refused it. */
  startProcess(request: ProcessRequest, sink: ProcessSink): Promise<StartedProcess<Origin>>;
  /**
   * Findings about a result that only this link can make (the local VM reads its console and
   * volumes); `origin` is undefined for a result of a process it did not start.
   */
  findings(result: ExecResult, origin: Origin | undefined): Promise<Finding[]>;
  /** Whether the VM still answers: diagnose asks it for stats only then. */
  readonly usable: boolean;
}
