/*
 * The host <-> guest-agent protocol: the one written definition.
 *
 * It is Golem's ya-runtime-vm protocol (message types 1..10, replies 0..5) plus gvmi-test
 * extensions numbered from 64, so that nothing here collides with a future upstream number.
 * src/agent/protocol.ts mirrors this file 1:1; change both together.
 *
 * Transport: the virtio-serial port named "manager_port" (a unix socket on the host).
 * All integers are little-endian.
 *
 * Host -> guest request:
 *     u64 msg_id (non-zero) | u8 type | { u8 subtype | body }* | u8 0 (end)
 *   BYTES = u64 len | len bytes          ARRAY = u64 count | BYTES * count
 *
 * Guest -> host message:
 *     u64 id (the request's msg_id; 0 for notifications) | u8 type | body
 *
 * Robustness (a gvmi-test guarantee; upstream dies on bad input):
 *   - an unknown type or subtype, a BYTES/ARRAY over its limit, or a body that makes no sense is
 *     answered with RESP_ERR (EPROTO, E2BIG, EINVAL, ...) for that msg_id; the agent then discards
 *     input until the stream has been idle for PROTO_RESYNC_IDLE_MS, which drops the rest of the
 *     bad request (hosts write each request in one go), and carries on;
 *   - a request left incomplete for PROTO_INCOMPLETE_TIMEOUT_MS is answered with ERR ETIMEDOUT
 *     and dropped.
 */
#ifndef GVMI_PROTO_H
#define GVMI_PROTO_H

#include <stdint.h>

/* ---- host -> guest request types ---- */
enum msg_type {
    MSG_QUIT = 1,         /* -> OK, then sync + power off */
    MSG_RUN_PROCESS = 2,  /* -> OK_U64 process id (ids start at 1) or ERR errno of execve/chdir */
    MSG_KILL_PROCESS = 3, /* -> OK; ERR ESRCH (no such running process). SIGKILLs the group */
    MSG_MOUNT_VOLUME = 4, /* -> OK; 9p, trans=virtio, version=9p2000.L, msize=PROTO_9P_MSIZE */
    MSG_UPLOAD_FILE = 5,  /* upstream: not implemented -> ERR EPROTONOSUPPORT */
    MSG_QUERY_OUTPUT = 6, /* -> OK_BYTES; consumes bytes of a pull-mode output buffer */
    MSG_PUT_INPUT_UPSTREAM = 7, /* upstream: not implemented -> ERR EPROTONOSUPPORT */
    MSG_SYNC_FS = 8,      /* -> OK after sync(2) */
    MSG_NET_CTL = 9,      /* no network in gvmi-test -> ERR EPROTONOSUPPORT */
    MSG_NET_HOST = 10,    /* no network in gvmi-test -> ERR EPROTONOSUPPORT */

    /* gvmi-test extensions */
    MSG_PUT_INPUT = 64,   /* SUB_INPUT_*: bytes for a process's stdin pipe, or EOF -> OK */
    MSG_SIGNAL = 65,      /* SUB_SIGNAL_*: any signal to a process group -> OK / ERR ESRCH */
    MSG_STATS = 66,       /* -> OK_BYTES holding struct proto_stats (packed LE u64 fields) */
    MSG_UPPER_USAGE = 67, /* SUB_USAGE_LIMIT: largest files written into the overlay upper
                           * -> OK_BYTES: repeated (u64 size | u64 path_len | path) */
    MSG_RESIZE = 68,      /* SUB_RESIZE_*: the window size of a process's terminal -> OK */
    MSG_RESUMED = 69,     /* SUB_RESUMED_*: the VM was restored from a snapshot: set the clock,
                           * mix the host's entropy into the pool and reseed -> OK */
};

/* RUN_PROCESS sub-messages */
enum sub_run_process {
    SUB_RUN_BIN = 1,  /* BYTES: the program; without a '/', searched in the process env's PATH */
    SUB_RUN_ARG = 2,  /* ARRAY: argv, argv[0] included */
    SUB_RUN_ENV = 3,  /* ARRAY: "K=V" (the whole environment; nothing is inherited) */
    SUB_RUN_UID = 4,  /* u32 */
    SUB_RUN_GID = 5,  /* u32 */
    SUB_RUN_RFD = 6,  /* u32 fd (0,1,2) | u8 redirect kind | kind body (see enum redirect_kind) */
    SUB_RUN_CWD = 7,  /* BYTES */
    SUB_RUN_ENT = 8,  /* flag, no body: an entrypoint process (accepted, no special handling) */
    SUB_RUN_PTY = 64, /* extension: u32 rows | u32 cols. The process gets a pseudo-terminal as its
                       * controlling terminal and stdin/stdout/stderr; what it writes comes as
                       * NOTIFY_OUTPUT_DATA on fd 1, PUT_INPUT types into it. RFDs are ignored. */
};

/* How a process's fd is connected. Without an RFD: stdin is /dev/null, stdout and stderr are
 * PIPE_PUSH. */
enum redirect_kind {
    REDIRECT_FILE = 0,          /* BYTES path (stdin: opened O_RDONLY; out: O_CREAT|O_TRUNC) */
    REDIRECT_PIPE_BLOCKING = 1, /* u64 buffer size; pull mode (QUERY_OUTPUT); full -> stop reading.
                                 * For fd 0: a stdin pipe fed by PUT_INPUT. */
    REDIRECT_PIPE_CYCLIC = 2,   /* u64 buffer size; pull mode; full -> oldest bytes dropped */
    REDIRECT_PIPE_PUSH = 64,    /* no body; extension: output sent as NOTIFY_OUTPUT_DATA as soon as
                                 * read, in order, never dropped; back-pressure when the host lags */
};

enum sub_kill_process { SUB_KILL_ID = 1 /* u64 */ };
enum sub_mount_volume { SUB_MOUNT_TAG = 1 /* BYTES */, SUB_MOUNT_PATH = 2 /* BYTES, absolute */ };
enum sub_query_output {
    SUB_QUERY_ID = 1,  /* u64 */
    SUB_QUERY_FD = 2,  /* u8: 1 or 2 */
    SUB_QUERY_OFF = 3, /* u64: accepted, ignored (reads always consume from the front) */
    SUB_QUERY_LEN = 4, /* u64: at most this many bytes */
};
enum sub_put_input {
    SUB_INPUT_ID = 1,   /* u64 */
    SUB_INPUT_DATA = 2, /* BYTES, at most PROTO_MAX_BYTES */
    SUB_INPUT_EOF = 3,  /* flag: close the stdin pipe after the queued data */
};
enum sub_signal { SUB_SIGNAL_ID = 1 /* u64 */, SUB_SIGNAL_SIGNO = 2 /* u32 */ };
enum sub_usage { SUB_USAGE_LIMIT = 1 /* u32: how many files, at most 1000 */ };
enum sub_resumed {
    SUB_RESUMED_TIME_NS = 1, /* u64: host CLOCK_REALTIME in ns since the epoch */
    SUB_RESUMED_ENTROPY = 2, /* BYTES: 16..PROTO_MAX_ENTROPY random bytes from the host */
};
enum sub_resize { SUB_RESIZE_ID = 1 /* u64 */, SUB_RESIZE_ROWS = 2 /* u32 */, SUB_RESIZE_COLS = 3 /* u32 */ };

/* ---- guest -> host message types ---- */
enum resp_type {
    RESP_OK = 0,
    RESP_OK_U64 = 1,              /* u64 */
    RESP_OK_BYTES = 2,            /* BYTES */
    RESP_ERR = 3,                 /* u32 errno (Linux numbering) */
    NOTIFY_OUTPUT_AVAILABLE = 4,  /* id 0 | u64 process id | u32 fd: pull buffer became non-empty */
    NOTIFY_PROCESS_DIED = 5,      /* id 0 | u64 process id | u8 status | u8 exit_kind; sent after
                                   * every byte of that process's push output */

    /* gvmi-test extensions */
    NOTIFY_READY = 64,            /* id 0 | u64 guest uptime in ms: the agent is serving */
    NOTIFY_OUTPUT_DATA = 65,      /* id 0 | u64 process id | u32 fd | BYTES data (push mode) */
};

enum exit_kind { EXIT_EXITED = 0, EXIT_KILLED = 1, EXIT_DUMPED = 2 };

/* MSG_STATS reply body: these u64 fields, in this order. */
struct proto_stats {
    uint64_t upper_total_bytes; /* the overlay's writable layer (tmpfs) size */
    uint64_t upper_used_bytes;
    uint64_t mem_total_bytes;
    uint64_t mem_available_bytes;
    uint64_t uptime_ms;
    uint64_t running_processes;
};
#define PROTO_STATS_FIELDS 6

#define PROTO_MAX_BYTES (16u * 1024u * 1024u) /* one BYTES field */
#define PROTO_MAX_ARRAY 65536u                /* entries in one ARRAY */
#define PROTO_MAX_OUTPUT_CHUNK 65536u         /* one NOTIFY_OUTPUT_DATA payload */
#define PROTO_MAX_ENTROPY 512u              /* SUB_RESUMED_ENTROPY bytes */
#define PROTO_RESYNC_IDLE_MS 50
#define PROTO_INCOMPLETE_TIMEOUT_MS 2000
#define PROTO_9P_MSIZE 104857600

#endif
