/** What a finished guest process left: its status, its output, and why it could not start. */
/** Why a process that the guest accepted could not start (the program, its interpreter, its cwd). */
export interface ExecFailure {
  step: string;
  errno: number;
  errnoName: string;
  cwd: string;
}

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
  execFailure: ExecFailure | null;
}
