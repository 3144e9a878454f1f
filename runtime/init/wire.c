#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A read cursor. Each read returns 1 when done, 0 when the buffer ends first, or -errno. */
struct cursor {
    const uint8_t *buf;
    size_t len, pos;
};

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static int read_u8(struct cursor *c, uint8_t *out) {
    if (c->len - c->pos < 1) return 0;
    *out = c->buf[c->pos++];
    return 1;
}

static int read_u32(struct cursor *c, uint32_t *out) {
    if (c->len - c->pos < 4) return 0;
    *out = get_u32(c->buf + c->pos);
    c->pos += 4;
    return 1;
}

static int read_u64(struct cursor *c, uint64_t *out) {
    if (c->len - c->pos < 8) return 0;
    *out = get_u64(c->buf + c->pos);
    c->pos += 8;
    return 1;
}

/* Reads return 1 when done, 0 when the buffer ends first, or READ_STOP: the VM stops as
 * upstream's would (an unknown sub-message or kind; a length it could not allocate). */
#define READ_STOP (-1)

/* A BYTES field of at most `max` bytes; longer ones give `too_long`. */
static int read_bytes_max(struct cursor *c, struct span *out, uint64_t max, int too_long) {
    uint64_t n;
    int r = read_u64(c, &n);
    if (r <= 0) return r;
    /* Checked before waiting for the data, so a hostile length is refused at once. */
    if (n > max) return too_long;
    if (c->len - c->pos < n) return 0;
    out->data = c->buf + c->pos;
    out->len = n;
    c->pos += (size_t)n;
    return 1;
}

static int read_bytes(struct cursor *c, struct span *out) {
    return read_bytes_max(c, out, PROTO_MAX_BYTES, READ_STOP);
}

static int read_array(struct cursor *c, struct span_array *out) {
    uint64_t count;
    int r = read_u64(c, &count);
    if (r <= 0) return r;
    if (count > PROTO_MAX_ARRAY) return READ_STOP;
    out->data = c->buf + c->pos;
    out->count = count;
    for (uint64_t i = 0; i < count; i++) {
        struct span ignored;
        r = read_bytes(c, &ignored);
        if (r <= 0) return r;
    }
    return 1;
}

struct span wire_array_entry(struct span_array arr, uint64_t i) {
    const uint8_t *p = arr.data;
    for (uint64_t k = 0; k < i; k++) p += 8 + get_u64(p);
    struct span s = {p + 8, get_u64(p)};
    return s;
}

/* The first recoverable error of a request (upstream answers it after reading the whole request). */
static void soft_error(struct request *req, uint32_t err) {
    if (!req->soft_error) req->soft_error = err;
}

static int read_redirect(struct cursor *c, struct request *req, int extensions) {
    uint32_t fd;
    uint8_t kind;
    int r;
    struct redirect rd = {0};
    if ((r = read_u32(c, &fd)) <= 0) return r;
    if ((r = read_u8(c, &kind)) <= 0) return r;
    rd.present = 1;
    rd.kind = kind;
    switch (kind) {
    case REDIRECT_FILE:
        if ((r = read_bytes(c, &rd.path)) <= 0) return r;
        break;
    case REDIRECT_PIPE_BLOCKING:
    case REDIRECT_PIPE_CYCLIC:
        if ((r = read_u64(c, &rd.size)) <= 0) return r;
        /* Checked after the body was read, as upstream does (init.c parse_fd_redir). */
        if (rd.size == 0 || rd.size % 4096 != 0) { soft_error(req, EINVAL); return 1; }
        if (rd.size > PROTO_MAX_BYTES) { soft_error(req, ENOMEM); return 1; }
        break;
    case REDIRECT_PIPE_PUSH:
        if (!extensions) { req->stop_reason = "unknown redirect kind"; return READ_STOP; }
        if (fd == 0) { soft_error(req, EINVAL); return 1; }
        break;
    default:
        req->stop_reason = "unknown redirect kind";
        return READ_STOP;
    }
    if (fd > 2) { soft_error(req, EINVAL); return 1; }
    req->redirect[fd] = rd;
    return 1;
}

static int read_net_host_entry(struct cursor *c, struct request *req) {
    struct span ip, name;
    int r;
    if ((r = read_bytes(c, &ip)) <= 0) return r;
    if ((r = read_bytes(c, &name)) <= 0) return r;
    if (req->host_count < PROTO_MAX_HOSTS) {
        req->hosts[req->host_count][0] = ip;
        req->hosts[req->host_count][1] = name;
    }
    req->host_count++;
    return 1;
}

static int read_u16(struct cursor *c, uint16_t *out) {
    if (c->len - c->pos < 2) return 0;
    *out = (uint16_t)(c->buf[c->pos] | c->buf[c->pos + 1] << 8);
    c->pos += 2;
    return 1;
}

/* One sub-message body of a request of type `type`. */
static int read_sub(struct cursor *c, struct request *req, uint8_t sub, int extensions) {
    switch (req->type) {
    case MSG_RUN_PROCESS:
        switch (sub) {
        case SUB_RUN_BIN: req->has_bin = 1; return read_bytes(c, &req->bin);
        case SUB_RUN_ARG: req->has_argv = 1; return read_array(c, &req->argv);
        case SUB_RUN_ENV: req->has_env = 1; return read_array(c, &req->env);
        case SUB_RUN_UID: req->has_uid = 1; return read_u32(c, &req->uid);
        case SUB_RUN_GID: req->has_gid = 1; return read_u32(c, &req->gid);
        case SUB_RUN_RFD: return read_redirect(c, req, extensions);
        case SUB_RUN_CWD: return read_bytes(c, &req->cwd);
        case SUB_RUN_ENT: req->entrypoint = 1; return 1;
        case SUB_RUN_PTY: {
            if (!extensions) break;
            int r;
            req->pty = 1;
            if ((r = read_u32(c, &req->rows)) <= 0) return r;
            return read_u32(c, &req->cols);
        }
        }
        break;
    case MSG_KILL_PROCESS:
        if (sub == SUB_KILL_ID) { req->has_process_id = 1; return read_u64(c, &req->process_id); }
        break;
    case MSG_MOUNT_VOLUME:
        if (sub == SUB_MOUNT_TAG) { req->has_tag = 1; return read_bytes(c, &req->tag); }
        if (sub == SUB_MOUNT_PATH) { req->has_path = 1; return read_bytes(c, &req->path); }
        break;
    case MSG_QUERY_OUTPUT:
        switch (sub) {
        case SUB_QUERY_ID: req->has_process_id = 1; return read_u64(c, &req->process_id);
        case SUB_QUERY_FD: req->has_fd = 1; return read_u8(c, &req->fd);
        case SUB_QUERY_OFF: return read_u64(c, &req->offset);
        case SUB_QUERY_LEN: return read_u64(c, &req->length);
        }
        break;
    case MSG_NET_CTL:
        switch (sub) {
        case SUB_NET_CTL_FLAGS: return read_u16(c, &req->net_flags);
        case SUB_NET_CTL_ADDR: return read_bytes(c, &req->net_addr);
        case SUB_NET_CTL_MASK: return read_bytes(c, &req->net_mask);
        case SUB_NET_CTL_GATEWAY: req->has_gateway = 1; return read_bytes(c, &req->net_gateway);
        case SUB_NET_CTL_IF_ADDR: req->has_if_addr = 1; return read_bytes(c, &req->net_if_addr);
        case SUB_NET_CTL_IF: return read_u16(c, &req->net_if);
        }
        break;
    case MSG_NET_HOST:
        if (sub == SUB_NET_HOST_ENTRY) return read_net_host_entry(c, req);
        break;
    case MSG_PUT_INPUT:
        switch (sub) {
        case SUB_INPUT_ID: req->has_process_id = 1; return read_u64(c, &req->process_id);
        case SUB_INPUT_DATA: return read_bytes(c, &req->input);
        case SUB_INPUT_EOF: req->input_eof = 1; return 1;
        }
        break;
    case MSG_SIGNAL:
        if (sub == SUB_SIGNAL_ID) { req->has_process_id = 1; return read_u64(c, &req->process_id); }
        if (sub == SUB_SIGNAL_SIGNO) return read_u32(c, &req->signo);
        break;
    case MSG_UPPER_USAGE:
        if (sub == SUB_USAGE_LIMIT) return read_u32(c, &req->limit);
        break;
    case MSG_RESIZE:
        if (sub == SUB_RESIZE_ID) { req->has_process_id = 1; return read_u64(c, &req->process_id); }
        if (sub == SUB_RESIZE_ROWS) return read_u32(c, &req->rows);
        if (sub == SUB_RESIZE_COLS) return read_u32(c, &req->cols);
        break;
    case MSG_RESUMED:
        if (sub == SUB_RESUMED_TIME_NS) { req->has_time = 1; return read_u64(c, &req->time_ns); }
        if (sub == SUB_RESUMED_ENTROPY) {
            int r = read_bytes_max(c, &req->entropy, PROTO_MAX_ENTROPY, READ_STOP);
            if (r <= 0) return r;
            if (req->entropy.len < 16) soft_error(req, EINVAL);
            return 1;
        }
        break;
    case MSG_CLOCK:
        if (sub == SUB_CLOCK_STEP_NS) {
            uint64_t step;
            int r = read_u64(c, &step);
            if (r <= 0) return r;
            memcpy(&req->clock_step_ns, &step, sizeof step); /* two's complement on the wire */
            return 1;
        }
        break;
    case MSG_HELLO:
        if (sub == SUB_HELLO_VERSION) return read_u32(c, &req->hello_version);
        break;
    }
    req->stop_reason = "unknown sub-message";
    return READ_STOP;
}

/* Types upstream knows, answered and then fatal by type alone (init.c handle_message). */
static int unimplemented_upstream(uint8_t type) {
    return type == MSG_UPLOAD_FILE || type == MSG_PUT_INPUT_UPSTREAM || type == MSG_SYNC_FS;
}

static int known_type(uint8_t type, int extensions) {
    if (type >= MSG_QUIT && type <= MSG_NET_HOST) return 1;
    if (type == MSG_HELLO) return 1; /* the handshake itself */
    return extensions && ((type >= MSG_PUT_INPUT && type <= MSG_RESUMED) || type == MSG_CLOCK);
}

enum parse_result wire_parse_request(const uint8_t *buf, size_t len, struct request *req,
                                     size_t *consumed, int *err, int extensions) {
    struct cursor c = {buf, len, 0};
    memset(req, 0, sizeof *req);
    *err = 0;
    int r = read_u64(&c, &req->id);
    if (r == 0) return PARSE_NEED_MORE;
    if ((r = read_u8(&c, &req->type)) == 0) return PARSE_NEED_MORE;
    /* Decided by the header alone: upstream answers these before reading any body, then stops. */
    if (unimplemented_upstream(req->type)) {
        *err = EPROTONOSUPPORT;
        req->stop_reason = "request type not implemented by the runtime";
        return PARSE_STOP;
    }
    if (!known_type(req->type, extensions)) {
        *err = ENOPROTOOPT;
        req->stop_reason = "unknown request type";
        return PARSE_STOP;
    }
    for (;;) {
        uint8_t sub;
        if ((r = read_u8(&c, &sub)) == 0) return PARSE_NEED_MORE;
        if (sub == 0) break;
        r = read_sub(&c, req, sub, extensions);
        if (r == 0) return PARSE_NEED_MORE;
        if (r < 0) {
            if (!req->stop_reason) req->stop_reason = "a field too large to read";
            return PARSE_STOP;
        }
    }
    *consumed = c.pos;
    return PARSE_COMPLETE;
}

/* ---- output ---- */

int obuf_reserve(struct obuf *b, size_t extra) {
    if (b->head > 0 && b->head == b->len) b->head = b->len = 0;
    if (b->len + extra <= b->cap) return 0;
    if (b->head > 0) { /* compact before growing */
        memmove(b->data, b->data + b->head, b->len - b->head);
        b->len -= b->head;
        b->head = 0;
        if (b->len + extra <= b->cap) return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

void obuf_consume(struct obuf *b, size_t n) {
    b->head += n;
    if (b->head >= b->len) b->head = b->len = 0;
}

size_t obuf_pending(const struct obuf *b) { return b->len - b->head; }

static uint8_t *header(struct obuf *b, uint64_t id, uint8_t type, size_t body) {
    if (obuf_reserve(b, 9 + body) < 0) return NULL;
    uint8_t *p = b->data + b->len;
    put_u64(p, id);
    p[8] = type;
    b->len += 9 + body;
    return p + 9;
}

int wire_ok(struct obuf *b, uint64_t id) { return header(b, id, RESP_OK, 0) ? 0 : -ENOMEM; }

int wire_ok_u64(struct obuf *b, uint64_t id, uint64_t value) {
    uint8_t *p = header(b, id, RESP_OK_U64, 8);
    if (!p) return -ENOMEM;
    put_u64(p, value);
    return 0;
}

int wire_ok_bytes(struct obuf *b, uint64_t id, const void *data, uint64_t len) {
    uint8_t *p = header(b, id, RESP_OK_BYTES, 8 + len);
    if (!p) return -ENOMEM;
    put_u64(p, len);
    if (len) memcpy(p + 8, data, len);
    return 0;
}

int wire_err(struct obuf *b, uint64_t id, uint32_t err) {
    uint8_t *p = header(b, id, RESP_ERR, 4);
    if (!p) return -ENOMEM;
    put_u32(p, err);
    return 0;
}

int wire_output_available(struct obuf *b, uint64_t process_id, uint32_t fd) {
    uint8_t *p = header(b, 0, NOTIFY_OUTPUT_AVAILABLE, 12);
    if (!p) return -ENOMEM;
    put_u64(p, process_id);
    put_u32(p + 8, fd);
    return 0;
}

int wire_process_died(struct obuf *b, uint64_t process_id, uint8_t status, uint8_t kind) {
    uint8_t *p = header(b, 0, NOTIFY_PROCESS_DIED, 10);
    if (!p) return -ENOMEM;
    put_u64(p, process_id);
    p[8] = status;
    p[9] = kind;
    return 0;
}

int wire_exec_failed(struct obuf *b, uint64_t process_id, uint8_t step, uint32_t err) {
    uint8_t *p = header(b, 0, NOTIFY_EXEC_FAILED, 13);
    if (!p) return -ENOMEM;
    put_u64(p, process_id);
    p[8] = step;
    put_u32(p + 9, err);
    return 0;
}

int wire_output_data(struct obuf *b, uint64_t process_id, uint32_t fd, const void *data,
                     uint64_t len) {
    uint8_t *p = header(b, 0, NOTIFY_OUTPUT_DATA, 20 + len);
    if (!p) return -ENOMEM;
    put_u64(p, process_id);
    put_u32(p + 8, fd);
    put_u64(p + 12, len);
    memcpy(p + 20, data, len);
    return 0;
}

/* The message header and OUTPUT_DATA's fields before the data. */
#define OUTPUT_DATA_PREFIX (9 + 20)

uint8_t *wire_output_data_space(struct obuf *b, size_t max) {
    if (obuf_reserve(b, OUTPUT_DATA_PREFIX + max) < 0) return NULL;
    return b->data + b->len + OUTPUT_DATA_PREFIX;
}

void wire_output_data_commit(struct obuf *b, uint64_t process_id, uint32_t fd, uint64_t len) {
    uint8_t *p = header(b, 0, NOTIFY_OUTPUT_DATA, 20 + len); /* room reserved: cannot fail */
    put_u64(p, process_id);
    put_u32(p + 8, fd);
    put_u64(p + 12, len);
}

int wire_output_data_header(struct obuf *b, uint64_t process_id, uint32_t fd, uint64_t len) {
    if (obuf_reserve(b, OUTPUT_DATA_PREFIX) < 0) return -ENOMEM;
    uint8_t *p = b->data + b->len;
    put_u64(p, 0);
    p[8] = NOTIFY_OUTPUT_DATA;
    put_u64(p + 9, process_id);
    put_u32(p + 17, fd);
    put_u64(p + 21, len);
    b->len += OUTPUT_DATA_PREFIX;
    return 0;
}
