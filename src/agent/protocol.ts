/**
 * Mirror of runtime/include/proto.h: the one definition of the host <-> guest-agent protocol.
 * Change both files together.
 */
export const MsgType = {
  QUIT: 1,
  RUN_PROCESS: 2,
  KILL_PROCESS: 3,
  MOUNT_VOLUME: 4,
  UPLOAD_FILE: 5,
  QUERY_OUTPUT: 6,
  PUT_INPUT_UPSTREAM: 7,
  SYNC_FS: 8,
  NET_CTL: 9,
  NET_HOST: 10,
  // gvmi-test extensions
  PUT_INPUT: 64,
  SIGNAL: 65,
  STATS: 66,
  UPPER_USAGE: 67,
  RESIZE: 68,
  RESUMED: 69,
  /** The handshake: extensions exist only after it (proto.h MSG_HELLO). */
  HELLO: 70,
  /** Steps the guest's CLOCK_REALTIME and reads it back (proto.h MSG_CLOCK). */
  CLOCK: 71,
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

export const SubRun = { BIN: 1, ARG: 2, ENV: 3, UID: 4, GID: 5, RFD: 6, CWD: 7, ENT: 8, PTY: 64 } as const;
export const SubKill = { ID: 1 } as const;
export const SubMount = { TAG: 1, PATH: 2 } as const;
export const SubQuery = { ID: 1, FD: 2, OFF: 3, LEN: 4 } as const;
export const SubInput = { ID: 1, DATA: 2, EOF: 3 } as const;
export const SubSignal = { ID: 1, SIGNO: 2 } as const;
export const SubUsage = { LIMIT: 1 } as const;
export const SubResize = { ID: 1, ROWS: 2, COLS: 3 } as const;
export const SubResumed = { TIME_NS: 1, ENTROPY: 2 } as const;
export const SubClock = { STEP_NS: 1 } as const;
export const SubHello = { VERSION: 1 } as const;
export const SubNetHost = { ENTRY: 1 } as const;
export const SubNetCtl = { FLAGS: 1, ADDR: 2, MASK: 3, GATEWAY: 4, IF_ADDR: 5, IF: 6 } as const;

/** The extension version this host speaks (proto.h PROTO_EXTENSION_VERSION). */
export const PROTO_EXTENSION_VERSION = 2;

export const RedirectKind = { FILE: 0, PIPE_BLOCKING: 1, PIPE_CYCLIC: 2, PIPE_PUSH: 64 } as const;

export const RespType = {
  OK: 0,
  OK_U64: 1,
  OK_BYTES: 2,
  ERR: 3,
  NOTIFY_OUTPUT_AVAILABLE: 4,
  NOTIFY_PROCESS_DIED: 5,
  // gvmi-test extensions (only after HELLO)
  NOTIFY_OUTPUT_DATA: 65,
  NOTIFY_EXEC_FAILED: 66,
} as const;

/** proto.h enum exec_step: where a process that a provider reports only as "exit 9" failed. */
export const ExecStep = { CHDIR: 1, SETGID: 2, SETUID: 3, EXECVE: 4 } as const;
/** The exit status upstream gives a process that could not start (EBADF). */
export const EXEC_FAILED_STATUS = 9;

export const ExitKind = { EXITED: 0, KILLED: 1, DUMPED: 2 } as const;

/** Field order of the STATS reply body (u64 each). */
export const STATS_FIELDS = [
  'upperTotalBytes',
  'upperUsedBytes',
  'memTotalBytes',
  'memAvailableBytes',
  'uptimeMs',
  'runningProcesses',
] as const;

export const PROTO_MAX_BYTES = 16 * 1024 * 1024;
/** Entries in one ARRAY field (proto.h PROTO_MAX_ARRAY): argv, env. */
export const PROTO_MAX_ARRAY = 65536;
/**
 * Stdin is sent in PUT_INPUT requests of at most this many bytes: well under PROTO_MAX_BYTES, so
 * that neither side holds one huge frame, and few enough round trips for any size.
 */
export const INPUT_CHUNK_BYTES = 1024 * 1024;
export const PROTO_MAX_OUTPUT_CHUNK = 65536;
