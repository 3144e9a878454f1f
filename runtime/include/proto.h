/*
 * The host <-> guest-agent protocol: the one written definition.
 *
 * It is Golem's ya-runtime-vm protocol (message types 1..10, replies 0..5) plus gvmi-test
 * extensions numbered from 64, so that nothing here collides with a future upstream number.
 * src/agent/protocol.ts is generated from this file: run `npm run generate:protocol` after a change
 * (test/unit/agent/protocol-mirror.test.ts fails until then).
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
 * Fidelity: for types 1..10 and replies 0..5 the agent behaves as upstream's init (ya-runtime-vm
 * 0.4.2 / 0.5.2, reference section 8): it sends nothing unprompted; it waits while no host is
 * connected; an unknown type is answered ERR ENOPROTOOPT and UPLOAD_FILE, upstream PUT_INPUT and
 * SYNC_FS ERR EPROTONOSUPPORT, and then the VM stops, as upstream's does; an unknown sub-message or
 * redirect kind stops it without an answer; a request is read to its end however long it takes.
 * Each stop prints `GVMI-AGENT-STOP <reason>` on the console first, so the host can say "a
 * provider's VM would stop here". gvmi-test's extensions (types and kinds >= 64) exist only after
 * the host sent MSG_HELLO; before that they are unknown types, as upstream.
 */
#ifndef GVMI_PROTO_H
#define GVMI_PROTO_H

#include <stdint.h>

/* ---- host -> guest request types ---- */
enum msg_type {
    MSG_QUIT = 1,         /* -> OK, then sync + power off */
    MSG_RUN_PROCESS = 2,  /* -> OK_U64 process id (ids from 1, used up by failed spawns too), or
                           * ERR: EFAULT without BIN/ARG, EINVAL for a bad RFD, the errno of opening
                           * a FILE redirect. A failed chdir/setresuid/execve is OK + PROCESS_DIED
                           * status 9 (upstream closes its status pipe first); with extensions the
                           * host is also told why (NOTIFY_EXEC_FAILED). */
    MSG_KILL_PROCESS = 3, /* -> OK (SIGKILL to that pid only); ERR EINVAL (id 0, unknown, or reaped
                           * and drained), ESRCH (exited, output unread) */
    MSG_MOUNT_VOLUME = 4, /* -> OK; 9p over `path`, made when missing; EINVAL for a relative path or
                           * a `.`/`..` component; ENOENT for an unknown tag */
    MSG_UPLOAD_FILE = 5,  /* upstream: not implemented -> ERR EPROTONOSUPPORT, VM stops */
    MSG_QUERY_OUTPUT = 6, /* -> OK_BYTES; EINVAL for len 0, fd not 1/2, an offset on a pipe;
                           * ESRCH for an unknown id; ENXIO for an offset past a file's end */
    MSG_PUT_INPUT_UPSTREAM = 7, /* upstream: not implemented -> ERR EPROTONOSUPPORT, VM stops */
    MSG_SYNC_FS = 8,      /* upstream: not implemented -> ERR EPROTONOSUPPORT, VM stops */
    MSG_NET_CTL = 9,      /* no NIC: the ioctl fails and upstream answers ERR 0xffffffff */
    MSG_NET_HOST = 10,    /* SUB_NET_HOST_ENTRY (ip, hostname)*: appended to /etc/hosts -> OK */

    /* gvmi-test extensions: only after MSG_HELLO */
    MSG_PUT_INPUT = 64,   /* SUB_INPUT_*: bytes for a process's stdin pipe, or EOF -> OK */
    MSG_SIGNAL = 65,      /* SUB_SIGNAL_*: a signal to a process and every descendant (SIGKILL:
                           * frozen with SIGSTOP first, so none forks away) -> OK / ERR ESRCH */
    MSG_STATS = 66,       /* -> OK_BYTES holding struct proto_stats (packed LE u64 fields) */
    MSG_UPPER_USAGE = 67, /* SUB_USAGE_LIMIT: largest files written into the overlay upper
                           * -> OK_BYTES: repeated (u64 size | u64 path_len | path) */
    MSG_RESIZE = 68,      /* SUB_RESIZE_*: the window size of a process's terminal -> OK */
    MSG_RESUMED = 69,     /* SUB_RESUMED_*: the VM was restored from a snapshot: set the clock,
                           * mix the host's entropy into the pool and reseed -> OK */
    MSG_HELLO = 70,       /* SUB_HELLO_VERSION: the host speaks the extensions -> OK_U64 the agent's
                           * extension version; known before the handshake (it is the handshake) */
    MSG_CLOCK = 71,       /* SUB_CLOCK_STEP_NS (optional): CLOCK_REALTIME moves by that step, then
                           * -> OK_U64 the guest's CLOCK_REALTIME in ns, read after the step; ERR
                           * the errno of a step the kernel refuses. How the host brings a
                           * restored guest's clock to within a few ms of its own whatever the
                           * load: it measures the offset across a round trip (NTP-style) and steps
                           * it away; a step is relative, so its own delay in the queues does not
                           * matter */
};

#define PROTO_EXTENSION_VERSION 2 /* 2: MSG_CLOCK */
#define PROTO_EXTENSION_CLOCK 2   /* the first extension version that knows MSG_CLOCK */

enum sub_hello { SUB_HELLO_VERSION = 1 /* u32 */ };
enum sub_net_ctl {
    SUB_NET_CTL_FLAGS = 1,   /* u16 */
    SUB_NET_CTL_ADDR = 2,    /* BYTES */
    SUB_NET_CTL_MASK = 3,    /* BYTES */
    SUB_NET_CTL_GATEWAY = 4, /* BYTES */
    SUB_NET_CTL_IF_ADDR = 5, /* BYTES */
    SUB_NET_CTL_IF = 6,      /* u16: 0 vpn, 1 inet */
};
enum sub_net_host { SUB_NET_HOST_ENTRY = 1 /* BYTES ip | BYTES hostname */ };

/* RUN_PROCESS sub-messages */
enum sub_run_process {
    SUB_RUN_BIN = 1,  /* BYTES: the program, passed to execve as is (no PATH search) */
    SUB_RUN_ARG = 2,  /* ARRAY: argv, argv[0] included */
    SUB_RUN_ENV = 3,  /* ARRAY: "K=V". Runtime 0.4: the process's environment; 0.5: the process
                       * gets an EMPTY environment whenever ENV is sent (ya-runtime-vm PR #201).
                       * Without ENV: init's own environment. */
    SUB_RUN_UID = 4,  /* u32 */
    SUB_RUN_GID = 5,  /* u32 */
    SUB_RUN_RFD = 6,  /* u32 fd (0,1,2) | u8 redirect kind | kind body (see enum redirect_kind) */
    SUB_RUN_CWD = 7,  /* BYTES */
    SUB_RUN_ENT = 8,  /* flag, no body: the entrypoint; when it exits, every process is killed and
                       * the VM stops (upstream). A second one: EEXIST */
    SUB_RUN_PTY = 64, /* extension: u32 rows | u32 cols. The process gets a pseudo-terminal as its
                       * controlling terminal and stdin/stdout/stderr; what it writes comes as
                       * NOTIFY_OUTPUT_DATA on fd 1, PUT_INPUT types into it. RFDs are ignored. */
};

/* How a process's fd is connected. Without an RFD (upstream): a file
 * /var/tmp/guest_agent_private/fds/<id>/<fd> in the image (fd 0: empty, read-only), read with
 * QUERY_OUTPUT at any offset, no notifications. fd must be 0..2 (EINVAL). */
enum redirect_kind {
    REDIRECT_FILE = 0,          /* BYTES absolute path (EINVAL otherwise): fd 0 O_RDONLY, others
                                 * O_WRONLY|O_CREAT, no O_TRUNC, mode 0700 less umask */
    REDIRECT_PIPE_BLOCKING = 1, /* u64 buffer size (> 0, a multiple of 4096, else EINVAL); pull mode:
                                 * only what fits is read, a full buffer holds the writer back; when
                                 * the process has died, the query that empties the buffer deletes
                                 * it and what is still in the pipe is dropped (upstream).
                                 * For fd 0 with extensions: a stdin pipe fed by PUT_INPUT. */
    REDIRECT_PIPE_CYCLIC = 2,   /* the same as BLOCKING: upstream reads only what fits for both */
    REDIRECT_PIPE_PUSH = 64,    /* extension, no body: output sent as NOTIFY_OUTPUT_DATA as soon as
                                 * read, in order, never dropped; PROCESS_DIED comes after the last
                                 * byte; back-pressure when the host lags */
};

enum sub_kill_process { SUB_KILL_ID = 1 /* u64 */ };
enum sub_mount_volume { SUB_MOUNT_TAG = 1 /* BYTES */, SUB_MOUNT_PATH = 2 /* BYTES, absolute */ };
enum sub_query_output {
    SUB_QUERY_ID = 1,  /* u64 */
    SUB_QUERY_FD = 2,  /* u8: 1 or 2 */
    SUB_QUERY_OFF = 3, /* u64: an offset into a FILE output; must be 0 for a pipe (EINVAL) */
    SUB_QUERY_LEN = 4, /* u64: at most this many bytes */
};
enum sub_put_input {
    SUB_INPUT_ID = 1,   /* u64 */
    SUB_INPUT_DATA = 2, /* BYTES, at most PROTO_MAX_BYTES */
    SUB_INPUT_EOF = 3,  /* flag: close the stdin pipe after the queued data */
};
enum sub_signal { SUB_SIGNAL_ID = 1 /* u64 */, SUB_SIGNAL_SIGNO = 2 /* u32 */ };
enum sub_usage { SUB_USAGE_LIMIT = 1 /* u32: how many files, at most PROTO_UPPER_USAGE_MAX_FILES */ };
enum sub_resumed {
    SUB_RESUMED_TIME_NS = 1, /* u64: host CLOCK_REALTIME in ns since the epoch */
    SUB_RESUMED_ENTROPY = 2, /* BYTES: 16..PROTO_MAX_ENTROPY random bytes from the host */
};
enum sub_clock {
    SUB_CLOCK_STEP_NS = 1, /* u64: a signed (two's complement) step in ns, added to CLOCK_REALTIME
                            * to the µs (ADJ_SETOFFSET; the guest's NTP state stays as it was) */
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

    /* gvmi-test extensions: only after MSG_HELLO */
    NOTIFY_OUTPUT_DATA = 65,      /* id 0 | u64 process id | u32 fd | BYTES data (push mode) */
    NOTIFY_EXEC_FAILED = 66,      /* id 0 | u64 process id | u8 step (enum exec_step) | u32 errno:
                                   * why a process a provider would report only as "exit 9" died;
                                   * sent right after the OK_U64 of its RUN_PROCESS */
};

enum exec_step { EXEC_STEP_CHDIR = 1, EXEC_STEP_SETGID = 2, EXEC_STEP_SETUID = 3, EXEC_STEP_EXECVE = 4 };

/* The status a process gets when it could not start: upstream's child writes to a status pipe it
 * has already closed and exits with that errno, EBADF. */
#define EXEC_FAILED_STATUS 9

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
#define PROTO_9P_MSIZE 104857600 /* runtime 0.5 asks for this; 0.4 leaves the kernel default */
/* One message, either way: the agent stops on a larger request, the host refuses a larger reply. */
#define PROTO_MAX_MESSAGE (64u * 1024u * 1024u)
#define PROTO_UPPER_USAGE_MAX_FILES 1000u /* SUB_USAGE_LIMIT: files in one UPPER_USAGE reply */

#endif
