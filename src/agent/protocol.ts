// Generated from runtime/include/proto.h by scripts/generate-protocol.ts: do not edit.
// Change proto.h, then run `npm run generate:protocol` (test/unit/agent/protocol-mirror.test.ts
// fails while this file is not what proto.h gives).

/**
 * ---- host -> guest request types ----
 *
 * proto.h enum msg_type
 */
export const MsgType = {
  /** -> OK, then sync + power off */
  QUIT: 1,
  /**
   * -> OK_U64 process id (ids from 1, used up by failed spawns too), or
   * ERR: EFAULT without BIN/ARG, EINVAL for a bad RFD, the errno of opening
   * a FILE redirect. A failed chdir/setresuid/execve is OK + PROCESS_DIED
   * status 9 (upstream closes its status pipe first); with extensions the
   * host is also told why (NOTIFY_EXEC_FAILED).
   */
  RUN_PROCESS: 2,
  /**
   * -> OK (SIGKILL to that pid only); ERR EINVAL (id 0, unknown, or reaped
   * and drained), ESRCH (exited, output unread)
   */
  KILL_PROCESS: 3,
  /**
   * -> OK; 9p over `path`, made when missing; EINVAL for a relative path or
   * a `.`/`..` component; ENOENT for an unknown tag
   */
  MOUNT_VOLUME: 4,
  /** upstream: not implemented -> ERR EPROTONOSUPPORT, VM stops */
  UPLOAD_FILE: 5,
  /**
   * -> OK_BYTES; EINVAL for len 0, fd not 1/2, an offset on a pipe;
   * ESRCH for an unknown id; ENXIO for an offset past a file's end
   */
  QUERY_OUTPUT: 6,
  /** upstream: not implemented -> ERR EPROTONOSUPPORT, VM stops */
  PUT_INPUT_UPSTREAM: 7,
  /** upstream: not implemented -> ERR EPROTONOSUPPORT, VM stops */
  SYNC_FS: 8,
  /** no NIC: the ioctl fails and upstream answers ERR 0xffffffff */
  NET_CTL: 9,
  /** SUB_NET_HOST_ENTRY (ip, hostname)*: appended to /etc/hosts -> OK */
  NET_HOST: 10,
  // gvmi-test extensions: only after MSG_HELLO
  /** SUB_INPUT_*: bytes for a process's stdin pipe, or EOF -> OK */
  PUT_INPUT: 64,
  /**
   * SUB_SIGNAL_*: a signal to a process and every descendant (SIGKILL:
   * frozen with SIGSTOP first, so none forks away) -> OK / ERR ESRCH
   */
  SIGNAL: 65,
  /** -> OK_BYTES holding struct proto_stats (packed LE u64 fields) */
  STATS: 66,
  /**
   * SUB_USAGE_LIMIT: largest files written into the overlay upper
   * -> OK_BYTES: repeated (u64 size | u64 path_len | path)
   */
  UPPER_USAGE: 67,
  /** SUB_RESIZE_*: the window size of a process's terminal -> OK */
  RESIZE: 68,
  /**
   * SUB_RESUMED_*: the VM was restored from a snapshot: set the clock,
   * mix the host's entropy into the pool and reseed -> OK
   */
  RESUMED: 69,
  /**
   * SUB_HELLO_VERSION: the host speaks the extensions -> OK_U64 the agent's
   * extension version; known before the handshake (it is the handshake)
   */
  HELLO: 70,
  /**
   * SUB_CLOCK_STEP_NS (optional): CLOCK_REALTIME moves by that step, then
   * -> OK_U64 the guest's CLOCK_REALTIME in ns, read after the step; ERR
   * the errno of a step the kernel refuses. How the host brings a
   * restored guest's clock to within a few ms of its own whatever the
   * load: it measures the offset across a round trip (NTP-style) and steps
   * it away; a step is relative, so its own delay in the queues does not
   * matter
   */
  CLOCK: 71,
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

/** 2: MSG_CLOCK */
export const PROTO_EXTENSION_VERSION = 2;

/** the first extension version that knows MSG_CLOCK */
export const PROTO_EXTENSION_CLOCK = 2;

/** proto.h enum sub_hello */
export const SubHello = {
  /** u32 */
  VERSION: 1,
} as const;
export type SubHello = (typeof SubHello)[keyof typeof SubHello];

/** proto.h enum sub_net_ctl */
export const SubNetCtl = {
  /** u16 */
  FLAGS: 1,
  /** BYTES */
  ADDR: 2,
  /** BYTES */
  MASK: 3,
  /** BYTES */
  GATEWAY: 4,
  /** BYTES */
  IF_ADDR: 5,
  /** u16: 0 vpn, 1 inet */
  IF: 6,
} as const;
export type SubNetCtl = (typeof SubNetCtl)[keyof typeof SubNetCtl];

/** proto.h enum sub_net_host */
export const SubNetHost = {
  /** BYTES ip | BYTES hostname */
  ENTRY: 1,
} as const;
export type SubNetHost = (typeof SubNetHost)[keyof typeof SubNetHost];

/**
 * RUN_PROCESS sub-messages
 *
 * proto.h enum sub_run_process
 */
export const SubRun = {
  /** BYTES: the program, passed to execve as is (no PATH search) */
  BIN: 1,
  /** ARRAY: argv, argv[0] included */
  ARG: 2,
  /**
   * ARRAY: "K=V". Runtime 0.4: the process's environment; 0.5: the process
   * gets an EMPTY environment whenever ENV is sent (ya-runtime-vm PR #201).
   * Without ENV: init's own environment.
   */
  ENV: 3,
  /** u32 */
  UID: 4,
  /** u32 */
  GID: 5,
  /** u32 fd (0,1,2) | u8 redirect kind | kind body (see enum redirect_kind) */
  RFD: 6,
  /** BYTES */
  CWD: 7,
  /**
   * flag, no body: the entrypoint; when it exits, every process is killed and
   * the VM stops (upstream). A second one: EEXIST
   */
  ENT: 8,
  /**
   * extension: u32 rows | u32 cols. The process gets a pseudo-terminal as its
   * controlling terminal and stdin/stdout/stderr; what it writes comes as
   * NOTIFY_OUTPUT_DATA on fd 1, PUT_INPUT types into it. RFDs are ignored.
   */
  PTY: 64,
} as const;
export type SubRun = (typeof SubRun)[keyof typeof SubRun];

/**
 * How a process's fd is connected. Without an RFD (upstream): a file
 * /var/tmp/guest_agent_private/fds/<id>/<fd> in the image (fd 0: empty, read-only), read with
 * QUERY_OUTPUT at any offset, no notifications. fd must be 0..2 (EINVAL).
 *
 * proto.h enum redirect_kind
 */
export const RedirectKind = {
  /**
   * BYTES absolute path (EINVAL otherwise): fd 0 O_RDONLY, others
   * O_WRONLY|O_CREAT, no O_TRUNC, mode 0700 less umask
   */
  FILE: 0,
  /**
   * u64 buffer size (> 0, a multiple of 4096, else EINVAL); pull mode:
   * only what fits is read, a full buffer holds the writer back; when
   * the process has died, the query that empties the buffer deletes
   * it and what is still in the pipe is dropped (upstream).
   * For fd 0 with extensions: a stdin pipe fed by PUT_INPUT.
   */
  PIPE_BLOCKING: 1,
  /** the same as BLOCKING: upstream reads only what fits for both */
  PIPE_CYCLIC: 2,
  /**
   * extension, no body: output sent as NOTIFY_OUTPUT_DATA as soon as
   * read, in order, never dropped; PROCESS_DIED comes after the last
   * byte; back-pressure when the host lags
   */
  PIPE_PUSH: 64,
} as const;
export type RedirectKind = (typeof RedirectKind)[keyof typeof RedirectKind];

/** proto.h enum sub_kill_process */
export const SubKill = {
  /** u64 */
  ID: 1,
} as const;
export type SubKill = (typeof SubKill)[keyof typeof SubKill];

/** proto.h enum sub_mount_volume */
export const SubMount = {
  /** BYTES */
  TAG: 1,
  /** BYTES, absolute */
  PATH: 2,
} as const;
export type SubMount = (typeof SubMount)[keyof typeof SubMount];

/** proto.h enum sub_query_output */
export const SubQuery = {
  /** u64 */
  ID: 1,
  /** u8: 1 or 2 */
  FD: 2,
  /** u64: an offset into a FILE output; must be 0 for a pipe (EINVAL) */
  OFF: 3,
  /** u64: at most this many bytes */
  LEN: 4,
} as const;
export type SubQuery = (typeof SubQuery)[keyof typeof SubQuery];

/** proto.h enum sub_put_input */
export const SubInput = {
  /** u64 */
  ID: 1,
  /** BYTES, at most PROTO_MAX_BYTES */
  DATA: 2,
  /** flag: close the stdin pipe after the queued data */
  EOF: 3,
} as const;
export type SubInput = (typeof SubInput)[keyof typeof SubInput];

/** proto.h enum sub_signal */
export const SubSignal = {
  /** u64 */
  ID: 1,
  /** u32 */
  SIGNO: 2,
} as const;
export type SubSignal = (typeof SubSignal)[keyof typeof SubSignal];

/** proto.h enum sub_usage */
export const SubUsage = {
  /** u32: how many files, at most PROTO_UPPER_USAGE_MAX_FILES */
  LIMIT: 1,
} as const;
export type SubUsage = (typeof SubUsage)[keyof typeof SubUsage];

/** proto.h enum sub_resumed */
export const SubResumed = {
  /** u64: host CLOCK_REALTIME in ns since the epoch */
  TIME_NS: 1,
  /** BYTES: 16..PROTO_MAX_ENTROPY random bytes from the host */
  ENTROPY: 2,
} as const;
export type SubResumed = (typeof SubResumed)[keyof typeof SubResumed];

/** proto.h enum sub_clock */
export const SubClock = {
  /**
   * u64: a signed (two's complement) step in ns, added to CLOCK_REALTIME
   * to the µs (ADJ_SETOFFSET; the guest's NTP state stays as it was)
   */
  STEP_NS: 1,
} as const;
export type SubClock = (typeof SubClock)[keyof typeof SubClock];

/** proto.h enum sub_resize */
export const SubResize = {
  /** u64 */
  ID: 1,
  /** u32 */
  ROWS: 2,
  /** u32 */
  COLS: 3,
} as const;
export type SubResize = (typeof SubResize)[keyof typeof SubResize];

/**
 * ---- guest -> host message types ----
 *
 * proto.h enum resp_type
 */
export const RespType = {
  OK: 0,
  /** u64 */
  OK_U64: 1,
  /** BYTES */
  OK_BYTES: 2,
  /** u32 errno (Linux numbering) */
  ERR: 3,
  /** id 0 | u64 process id | u32 fd: pull buffer became non-empty */
  NOTIFY_OUTPUT_AVAILABLE: 4,
  /**
   * id 0 | u64 process id | u8 status | u8 exit_kind; sent after
   * every byte of that process's push output
   */
  NOTIFY_PROCESS_DIED: 5,
  // gvmi-test extensions: only after MSG_HELLO
  /** id 0 | u64 process id | u32 fd | BYTES data (push mode) */
  NOTIFY_OUTPUT_DATA: 65,
  /**
   * id 0 | u64 process id | u8 step (enum exec_step) | u32 errno:
   * why a process a provider would report only as "exit 9" died;
   * sent right after the OK_U64 of its RUN_PROCESS
   */
  NOTIFY_EXEC_FAILED: 66,
} as const;
export type RespType = (typeof RespType)[keyof typeof RespType];

/** proto.h enum exec_step */
export const ExecStep = {
  CHDIR: 1,
  SETGID: 2,
  SETUID: 3,
  EXECVE: 4,
} as const;
export type ExecStep = (typeof ExecStep)[keyof typeof ExecStep];

/**
 * The status a process gets when it could not start: upstream's child writes to a status pipe it
 * has already closed and exits with that errno, EBADF.
 */
export const EXEC_FAILED_STATUS = 9;

/** proto.h enum exit_kind */
export const ExitKind = {
  EXITED: 0,
  KILLED: 1,
  DUMPED: 2,
} as const;
export type ExitKind = (typeof ExitKind)[keyof typeof ExitKind];

/**
 * MSG_STATS reply body: these u64 fields, in this order.
 *
 * proto.h struct proto_stats: one little-endian u64 per name
 */
export const STATS_FIELDS = [
  /** the overlay's writable layer (tmpfs) size */
  'upperTotalBytes',
  'upperUsedBytes',
  'memTotalBytes',
  'memAvailableBytes',
  'uptimeMs',
  'runningProcesses',
] as const;

export const PROTO_STATS_FIELDS = 6;

/** one BYTES field */
export const PROTO_MAX_BYTES = 16 * 1024 * 1024;

/** entries in one ARRAY */
export const PROTO_MAX_ARRAY = 65536;

/** one NOTIFY_OUTPUT_DATA payload */
export const PROTO_MAX_OUTPUT_CHUNK = 65536;

/** SUB_RESUMED_ENTROPY bytes */
export const PROTO_MAX_ENTROPY = 512;

/** runtime 0.5 asks for this; 0.4 leaves the kernel default */
export const PROTO_9P_MSIZE = 104857600;

/** One message, either way: the agent stops on a larger request, the host refuses a larger reply. */
export const PROTO_MAX_MESSAGE = 64 * 1024 * 1024;

/** SUB_USAGE_LIMIT: files in one UPPER_USAGE reply */
export const PROTO_UPPER_USAGE_MAX_FILES = 1000;
