/**
 * Exit statuses of the CLI. `run` passes the guest command's own status through (0-255, 128+N for
 * a signal), so gvmi-test's own failures use statuses a shell reserves or rarely sees. README's
 * exit-status table says the same; test/unit/cli/exit-codes.test.ts holds one to the other for
 * every error code.
 */
import type { ErrorCode } from '../errors.js';

export const EXIT = {
  ok: 0,
  failure: 1, // an internal error: a bug in gvmi-test
  usage: 2,
  timeout: 124,
  image: 65, // EX_DATAERR: the input image/archive is bad
  setup: 69, // EX_UNAVAILABLE: QEMU, runtime, tools missing
  vm: 70, // EX_SOFTWARE: the VM crashed, failed to boot, or the agent misbehaved
  cantCreate: 73, // EX_CANTCREAT: output exists / cannot be written
  transfer: 74, // EX_IOERR: a file transfer was refused or failed, or a cache entry could not be removed
  connect: 75, // EX_TEMPFAIL: the served VM or the named network cannot be reached (is `serve` / `network start` running?)
} as const;

export function exitCodeFor(code: ErrorCode): number {
  // A deploy option the runtime profile does not offer, or a provider refuses, is the caller's to change.
  if (code === 'usage' || code === 'build.bad-option' || code.startsWith('deploy.')) return EXIT.usage;
  if (code === 'exec.timeout' || code === 'agent.timeout' || code === 'vm.boot-timeout') return EXIT.timeout;
  if (code === 'build.output-exists' || code === 'build.output-unwritable') return EXIT.cantCreate;
  if (code.startsWith('image.') || code.startsWith('build.')) return EXIT.image;
  if (code.startsWith('setup.')) return EXIT.setup;
  if (code.startsWith('transfer.') || code.startsWith('cache.')) return EXIT.transfer;
  if (code.startsWith('connect.') || code.startsWith('network.')) return EXIT.connect;
  if (code.startsWith('vm.') || code.startsWith('agent.') || code.startsWith('exec.') || code.startsWith('snapshot.')) return EXIT.vm;
  return EXIT.failure;
}

/**
 * Thrown by a command that has printed its result and wants a specific exit status (runCli
 * returns it; nothing more is printed).
 */
export class ExitStatus {
  constructor(readonly status: number) {}
}

/** How a shell reports a process ended by `signal`: 128 + its number (130 for SIGINT, 141 for SIGPIPE). */
export { signalStatus } from '../signals.js';
