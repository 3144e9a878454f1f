/* Decoding host requests and encoding guest messages (runtime/include/proto.h).
 * Pure code: no I/O, so runtime/init/test/wire_test.c exercises it on the host. */
#ifndef GVMI_WIRE_H
#define GVMI_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include "../include/proto.h"

/* A byte range inside the input buffer (not NUL-terminated, not owned). */
struct span {
    const uint8_t *data;
    uint64_t len;
};

/* An ARRAY field: `count` BYTES entries starting at `data`. */
struct span_array {
    const uint8_t *data;
    uint64_t count;
};

struct redirect {
    int present;
    uint8_t kind;
    struct span path;  /* REDIRECT_FILE */
    uint64_t size;     /* pipe kinds */
};

#define PROTO_MAX_HOSTS 256 /* NET_HOST entries kept from one request (more are read and dropped) */

struct request {
    uint64_t id;
    uint8_t type;
    /* The first error upstream answers after reading the whole request (a bad RFD), or 0. */
    uint32_t soft_error;
    /* Set with PARSE_STOP: why upstream's VM would stop here. */
    const char *stop_reason;
    /* RUN_PROCESS */
    struct span bin, cwd;
    struct span_array argv, env;
    int has_bin, has_argv, has_env, has_uid, has_gid, entrypoint;
    uint32_t uid, gid;
    struct redirect redirect[3];
    /* KILL / QUERY / PUT_INPUT / SIGNAL: the process */
    uint64_t process_id;
    int has_process_id;
    /* MOUNT_VOLUME */
    struct span tag, path;
    int has_tag, has_path;
    /* NET_CTL */
    uint16_t net_flags, net_if;
    struct span net_addr, net_mask, net_gateway, net_if_addr;
    int has_gateway, has_if_addr;
    /* NET_HOST: (ip, hostname) pairs */
    struct span hosts[PROTO_MAX_HOSTS][2];
    uint64_t host_count;
    /* HELLO */
    uint32_t hello_version;
    /* QUERY_OUTPUT */
    uint8_t fd;
    int has_fd;
    uint64_t offset, length;
    /* PUT_INPUT */
    struct span input;
    int input_eof;
    /* SIGNAL */
    uint32_t signo;
    /* UPPER_USAGE */
    uint32_t limit;
    /* RUN_PROCESS with SUB_RUN_PTY, and RESIZE */
    int pty;
    uint32_t rows, cols;
    /* RESUMED */
    uint64_t time_ns;
    int has_time;
    struct span entropy;
    /* CLOCK */
    int64_t clock_step_ns;
};

enum parse_result {
    PARSE_COMPLETE,  /* *req filled, *consumed bytes used */
    PARSE_NEED_MORE, /* the buffer holds a prefix of a request: wait for the rest, however long */
    PARSE_STOP,      /* upstream's VM stops here: answer *err first when it is not 0 (req->id is
                      * set), req->stop_reason says why */
};

/* Parses one request from the start of buf. Spans in *req point into buf. `extensions`: the host
 * has sent MSG_HELLO, so gvmi-test's types and kinds (>= 64) are known. */
enum parse_result wire_parse_request(const uint8_t *buf, size_t len, struct request *req,
                                     size_t *consumed, int *err, int extensions);

/* Iterates an ARRAY: entry i of arr (i < arr.count). */
struct span wire_array_entry(struct span_array arr, uint64_t i);

/* A growable output buffer for guest -> host messages. */
struct obuf {
    uint8_t *data;
    size_t len, cap, head; /* bytes [head, len) are pending */
};

int obuf_reserve(struct obuf *b, size_t extra);
void obuf_consume(struct obuf *b, size_t n);
size_t obuf_pending(const struct obuf *b);

int wire_ok(struct obuf *b, uint64_t id);
int wire_ok_u64(struct obuf *b, uint64_t id, uint64_t value);
int wire_ok_bytes(struct obuf *b, uint64_t id, const void *data, uint64_t len);
int wire_err(struct obuf *b, uint64_t id, uint32_t err);
int wire_output_available(struct obuf *b, uint64_t process_id, uint32_t fd);
int wire_process_died(struct obuf *b, uint64_t process_id, uint8_t status, uint8_t kind);
int wire_exec_failed(struct obuf *b, uint64_t process_id, uint8_t step, uint32_t err);
int wire_output_data(struct obuf *b, uint64_t process_id, uint32_t fd, const void *data,
                     uint64_t len);
/* OUTPUT_DATA read straight into the buffer, one copy fewer than wire_output_data: _space
 * reserves room for up to `max` bytes of data and says where they go (NULL: no memory); _commit
 * writes the message for the `len` <= max bytes put there. Nothing may be written between. */
uint8_t *wire_output_data_space(struct obuf *b, size_t max);
void wire_output_data_commit(struct obuf *b, uint64_t process_id, uint32_t fd, uint64_t len);
/* OUTPUT_DATA's header and fields alone, announcing `len` data bytes that the caller sends next
 * by other means (splice_out.h). 0 or -ENOMEM. */
int wire_output_data_header(struct obuf *b, uint64_t process_id, uint32_t fd, uint64_t len);

void put_u64(uint8_t *p, uint64_t v);
void put_u32(uint8_t *p, uint32_t v);

#endif
