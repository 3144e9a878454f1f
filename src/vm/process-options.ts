/** What a caller says about a process it runs in a VM, local or served. */
export interface ExecOptions {
  /** Added to (and overriding) the image's Env. */
  env?: Record<string, string>;
  /** Defaults to the image's WorkingDir, as on a provider. */
  cwd?: string;
  /** Bytes for the process's stdin; without it stdin is /dev/null. */
  stdin?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
  uid?: number;
  gid?: number;
  /** Output kept in memory per process (both streams); byte counts stay exact past it. */
  maxBuffer?: number;
}

export interface SpawnOptions extends Omit<ExecOptions, 'stdin'> {
  /** Keep stdin open for write()/end(). */
  stdin?: 'pipe' | string | Buffer;
  /** Make the process async-iterable over its output chunks. */
  iterate?: boolean;
  /**
   * A pseudo-terminal of this size in the guest as the process's stdin/stdout/stderr (for
   * interactive programs: shells with job control, editors). Output comes as stdout; write()
   * types into it; resize() changes its size.
   */
  pty?: { rows: number; cols: number };
}
