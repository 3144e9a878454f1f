/**
 * The one error class of gvmi-test. `code` is stable (tests and callers match on it, the CLI maps
 * it to an exit status: src/cli/exit-codes.ts, and README's table, which a unit test holds to
 * it); the message is for people and may change.
 */
export const ERROR_CODES = [
  // reading a .gvmi
  'image.unreadable',
  'image.truncated',
  'image.bad-length',
  'image.crc-mismatch',
  'image.bad-json',
  'image.no-squashfs',
  'image.bad-volume',
  'image.corrupt',
  // an image named by IMAGE[:TAG] that the container engines do not have
  'image.not-in-engine',
  // building a .gvmi
  'build.bad-source',
  'build.unknown-archive',
  'build.bad-archive',
  'build.path-escape',
  'build.output-exists',
  'build.output-unwritable',
  'build.mksquashfs-failed',
  'build.bad-option',
  'build.too-large',
  // host set-up
  'setup.qemu-missing',
  'setup.runtime-missing',
  'setup.tool-missing',
  'setup.kvm-unusable',
  'setup.unsafe-snapshot-dir',
  // `gvmi-test setup`: QEMU or squashfs-tools missing and not installed (the command is in the hint), or the install failed
  'setup.packages-missing',
  'setup.install-failed',
  'setup.unsafe-cache-dir',
  'setup.engine-missing',
  'setup.engine-unusable',
  // a running VM
  'vm.boot-failed',
  'vm.boot-timeout',
  'vm.crashed',
  'vm.stopped-like-provider',
  'vm.stopped',
  'snapshot.failed',
  'agent.protocol',
  'agent.request-failed',
  'agent.timeout',
  'exec.failed',
  'exec.timeout',
  'exec.aborted',
  // reaching a served VM (`exec`, connectVm)
  'connect.failed',
  'connect.refused',
  // files in and out of volumes
  'transfer.not-in-volume',
  'transfer.escape',
  'transfer.failed',
  'transfer.too-large',
  // `gvmi-test cache prune|clear` could not remove an entry
  'cache.remove-failed',
  // a requestor's deploy options (volume kinds): not offered by the runtime profile, or refused
  'deploy.unsupported-by-runtime',
  'deploy.bad-volume',
  // a requestor network (VPN) or outbound manifest that cannot be set up as asked
  'deploy.bad-network',
  'deploy.bad-manifest',
  // a network of another gvmi-test process (`gvmi-test network start`, `--network NAME`): not
  // running, its process gone, no address left, or its name taken by a running one
  'network.not-found',
  'network.gone',
  'network.exhausted',
  'network.name-taken',
  // the directory of the networks' control sockets is not this user's alone
  'setup.unsafe-runtime-dir',
  // the caller's mistake: a bad command line, option or request
  'usage',
  // a bug in gvmi-test (the CLI reports any other exception with this code)
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class GvmiTestError extends Error {
  override readonly name = 'GvmiTestError';
  readonly code: ErrorCode;
  /** What the user can do about it, when we know. */
  readonly hint?: string;
  /** Extra facts for machine-readable output (console tail, errno, paths…). */
  readonly details?: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.hint !== undefined) this.hint = options.hint;
    if (options.details !== undefined) this.details = options.details;
  }
}

export function isGvmiTestError(error: unknown, code?: ErrorCode): error is GvmiTestError {
  return error instanceof GvmiTestError && (code === undefined || error.code === code);
}
