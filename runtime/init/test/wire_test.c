/* Unit tests of the protocol code (wire.c) and of the outgoing stream with spliced push output
 * (splice_out.c, against host pipes and files), run on the host by `make test-c`. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../splice_out.h"
#include "../wire.h"

static int passed, failed;

#define CHECK(cond) do { \
    if (cond) passed++; \
    else { failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

struct builder { uint8_t buf[4096]; size_t len; };

static void b_u8(struct builder *b, uint8_t v) { b->buf[b->len++] = v; }
static void b_u32(struct builder *b, uint32_t v) { put_u32(b->buf + b->len, v); b->len += 4; }
static void b_u64(struct builder *b, uint64_t v) { put_u64(b->buf + b->len, v); b->len += 8; }
static void b_bytes(struct builder *b, const char *s) {
    size_t n = strlen(s);
    b_u64(b, n);
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static struct builder run_process_request(void) {
    struct builder b = {{0}, 0};
    b_u64(&b, 7);
    b_u8(&b, MSG_RUN_PROCESS);
    b_u8(&b, SUB_RUN_BIN); b_bytes(&b, "/bin/echo");
    b_u8(&b, SUB_RUN_ARG); b_u64(&b, 2); b_bytes(&b, "echo"); b_bytes(&b, "hi");
    b_u8(&b, SUB_RUN_ENV); b_u64(&b, 1); b_bytes(&b, "PATH=/bin");
    b_u8(&b, SUB_RUN_UID); b_u32(&b, 1000);
    b_u8(&b, SUB_RUN_RFD); b_u32(&b, 1); b_u8(&b, REDIRECT_PIPE_PUSH);
    b_u8(&b, SUB_RUN_RFD); b_u32(&b, 2); b_u8(&b, REDIRECT_PIPE_CYCLIC); b_u64(&b, 4096);
    b_u8(&b, SUB_RUN_CWD); b_bytes(&b, "/golem/work");
    b_u8(&b, 0);
    return b;
}

static void test_run_process_parses(void) {
    struct builder b = run_process_request();
    struct request req;
    size_t used = 0;
    int err = -1;
    CHECK(wire_parse_request(b.buf, b.len, &req, &used, &err, 1) == PARSE_COMPLETE);
    CHECK(used == b.len);
    CHECK(req.id == 7 && req.type == MSG_RUN_PROCESS);
    CHECK(req.bin.len == 9 && !memcmp(req.bin.data, "/bin/echo", 9));
    CHECK(req.argv.count == 2);
    struct span a1 = wire_array_entry(req.argv, 1);
    CHECK(a1.len == 2 && !memcmp(a1.data, "hi", 2));
    CHECK(req.has_uid && req.uid == 1000 && !req.has_gid);
    CHECK(req.redirect[1].present && req.redirect[1].kind == REDIRECT_PIPE_PUSH);
    CHECK(req.redirect[2].kind == REDIRECT_PIPE_CYCLIC && req.redirect[2].size == 4096);
    CHECK(req.cwd.len == 11);
}

static void test_every_prefix_needs_more(void) {
    struct builder b = run_process_request();
    int all_need_more = 1;
    for (size_t n = 0; n < b.len; n++) {
        struct request req;
        size_t used;
        int err;
        if (wire_parse_request(b.buf, n, &req, &used, &err, 1) != PARSE_NEED_MORE) all_need_more = 0;
    }
    CHECK(all_need_more);
}

static void test_two_requests_back_to_back(void) {
    struct builder b = {{0}, 0};
    b_u64(&b, 1); b_u8(&b, MSG_STATS); b_u8(&b, 0);
    b_u64(&b, 2); b_u8(&b, MSG_QUIT); b_u8(&b, 0);
    struct request req;
    size_t used;
    int err;
    CHECK(wire_parse_request(b.buf, b.len, &req, &used, &err, 1) == PARSE_COMPLETE && used == 10 && req.type == MSG_STATS);
    CHECK(wire_parse_request(b.buf + used, b.len - used, &req, &used, &err, 1) == PARSE_COMPLETE && req.id == 2 && req.type == MSG_QUIT);
}

static enum parse_result parse_ext(struct builder *b, int *err, struct request *req, int extensions) {
    size_t used;
    return wire_parse_request(b->buf, b->len, req, &used, err, extensions);
}

/* Where upstream's init answers and dies, or dies without a word (init.c handle_message,
 * handle_run_process), the parser says STOP with the errno to answer first. */
static void test_upstream_stop_paths(void) {
    int err;
    struct request req;
    struct builder b = {{0}, 0};
    b_u64(&b, 9); b_u8(&b, 200); /* unknown type: ERR ENOPROTOOPT, then stop */
    CHECK(parse_ext(&b, &err, &req, 1) == PARSE_STOP && err == ENOPROTOOPT && req.id == 9);

    for (uint8_t t = MSG_UPLOAD_FILE; t <= MSG_SYNC_FS; t++) {
        if (t == MSG_QUERY_OUTPUT) continue;
        b.len = 0;
        b_u64(&b, 10); b_u8(&b, t); /* decided by the header alone */
        CHECK(parse_ext(&b, &err, &req, 1) == PARSE_STOP && err == EPROTONOSUPPORT);
    }

    b.len = 0;
    b_u64(&b, 4); b_u8(&b, MSG_KILL_PROCESS); b_u8(&b, 99); /* unknown subtype: stop, no answer */
    CHECK(parse_ext(&b, &err, &req, 1) == PARSE_STOP && err == 0);

    b.len = 0;
    b_u64(&b, 5); b_u8(&b, MSG_RUN_PROCESS); b_u8(&b, SUB_RUN_RFD); b_u32(&b, 1); b_u8(&b, 77); /* unknown kind */
    CHECK(parse_ext(&b, &err, &req, 1) == PARSE_STOP && err == 0);

    b.len = 0;
    b_u64(&b, 3); b_u8(&b, MSG_RUN_PROCESS); b_u8(&b, SUB_RUN_BIN); b_u64(&b, 1ull << 60); /* cannot hold it */
    CHECK(parse_ext(&b, &err, &req, 1) == PARSE_STOP && err == 0);
}

/* Extensions (types, kinds, sub-messages >= 64) do not exist before HELLO: they are what
 * upstream would make of them. HELLO itself is always known. */
static void test_extensions_only_after_hello(void) {
    int err;
    struct request req;
    struct builder b = {{0}, 0};
    b_u64(&b, 1); b_u8(&b, MSG_STATS); b_u8(&b, 0);
    CHECK(parse_ext(&b, &err, &req, 0) == PARSE_STOP && err == ENOPROTOOPT);
    CHECK(parse_ext(&b, &err, &req, 1) == PARSE_COMPLETE && req.type == MSG_STATS);

    b.len = 0;
    b_u64(&b, 2); b_u8(&b, MSG_RUN_PROCESS); b_u8(&b, SUB_RUN_RFD); b_u32(&b, 1); b_u8(&b, REDIRECT_PIPE_PUSH); b_u8(&b, 0);
    CHECK(parse_ext(&b, &err, &req, 0) == PARSE_STOP && err == 0);

    b.len = 0;
    b_u64(&b, 3); b_u8(&b, MSG_HELLO); b_u8(&b, SUB_HELLO_VERSION); b_u32(&b, 1); b_u8(&b, 0);
    CHECK(parse_ext(&b, &err, &req, 0) == PARSE_COMPLETE && req.type == MSG_HELLO && req.hello_version == 1);
}

/* upstream answers these after reading the whole request, and the next request is read normally */
static void test_soft_errors(void) {
    int err;
    struct request req;
    struct builder b = {{0}, 0};
    b_u64(&b, 6); b_u8(&b, MSG_RUN_PROCESS); b_u8(&b, SUB_RUN_RFD); b_u32(&b, 7); b_u8(&b, REDIRECT_PIPE_BLOCKING); b_u64(&b, 4096); b_u8(&b, 0);
    CHECK(parse_ext(&b, &err, &req, 0) == PARSE_COMPLETE && req.soft_error == EINVAL); /* fd out of range */

    b.len = 0;
    b_u64(&b, 7); b_u8(&b, MSG_RUN_PROCESS); b_u8(&b, SUB_RUN_RFD); b_u32(&b, 1); b_u8(&b, REDIRECT_PIPE_CYCLIC); b_u64(&b, 1000); b_u8(&b, 0);
    CHECK(parse_ext(&b, &err, &req, 0) == PARSE_COMPLETE && req.soft_error == EINVAL); /* not a multiple of 4096 */

    b.len = 0;
    b_u64(&b, 0); b_u8(&b, MSG_QUIT); b_u8(&b, 0); /* id 0: upstream does not check it */
    CHECK(parse_ext(&b, &err, &req, 0) == PARSE_COMPLETE && req.type == MSG_QUIT && req.id == 0);
}

static void test_net_messages(void) {
    int err;
    struct request req;
    struct builder b = {{0}, 0};
    b_u64(&b, 20); b_u8(&b, MSG_NET_HOST);
    b_u8(&b, SUB_NET_HOST_ENTRY); b_bytes(&b, "192.168.7.2"); b_bytes(&b, "node-2");
    b_u8(&b, SUB_NET_HOST_ENTRY); b_bytes(&b, "192.168.7.3"); b_bytes(&b, "node-3");
    b_u8(&b, 0);
    CHECK(parse_ext(&b, &err, &req, 0) == PARSE_COMPLETE && req.host_count == 2);
    CHECK(req.hosts[1][1].len == 6 && !memcmp(req.hosts[1][1].data, "node-3", 6));

    b.len = 0;
    b_u64(&b, 21); b_u8(&b, MSG_NET_CTL);
    b_u8(&b, SUB_NET_CTL_FLAGS); b_u8(&b, 1); b_u8(&b, 0);
    b_u8(&b, SUB_NET_CTL_IF_ADDR); b_bytes(&b, "192.168.7.2");
    b_u8(&b, SUB_NET_CTL_MASK); b_bytes(&b, "255.255.255.0");
    b_u8(&b, SUB_NET_CTL_IF); b_u8(&b, 0); b_u8(&b, 0);
    b_u8(&b, 0);
    CHECK(parse_ext(&b, &err, &req, 0) == PARSE_COMPLETE && req.has_if_addr && req.net_flags == 1 && req.net_mask.len == 13);
}

static void test_encoders(void) {
    struct obuf o = {0};
    CHECK(wire_err(&o, 5, ENOENT) == 0);
    CHECK(obuf_pending(&o) == 13);
    CHECK(o.data[0] == 5 && o.data[8] == RESP_ERR && o.data[9] == ENOENT);
    CHECK(wire_output_data(&o, 3, 2, "abc", 3) == 0);
    CHECK(obuf_pending(&o) == 13 + 9 + 20 + 3);
    const uint8_t *m = o.data + 13;
    CHECK(m[8] == NOTIFY_OUTPUT_DATA && m[9] == 3 && m[17] == 2 && m[21] == 3 && !memcmp(m + 29, "abc", 3));
    obuf_consume(&o, 13);
    CHECK(obuf_pending(&o) == 32);
    CHECK(wire_process_died(&o, 3, 9, EXIT_KILLED) == 0);
    CHECK(obuf_pending(&o) == 32 + 19);
    obuf_consume(&o, obuf_pending(&o));
    CHECK(obuf_pending(&o) == 0 && o.head == 0);
    /* Read straight into the buffer: the same bytes as wire_output_data, behind what is pending,
     * whatever room was asked for. */
    CHECK(wire_err(&o, 6, EIO) == 0);
    obuf_consume(&o, 1); /* a partly written message: compacted, not lost */
    uint8_t *dst = wire_output_data_space(&o, 65536);
    CHECK(dst != NULL && o.cap >= 12 + 29 + 65536);
    memcpy(dst, "xyz", 3);
    wire_output_data_commit(&o, 4, 1, 3);
    struct obuf ref = {0};
    CHECK(wire_output_data(&ref, 4, 1, "xyz", 3) == 0);
    CHECK(obuf_pending(&o) == 12 + obuf_pending(&ref));
    CHECK(!memcmp(o.data + o.head + 12, ref.data, obuf_pending(&ref)));
    free(ref.data);
    free(o.data);
}

static void test_pty_and_resize(void) {
    struct builder b = {{0}, 0};
    b_u64(&b, 11); b_u8(&b, MSG_RUN_PROCESS);
    b_u8(&b, SUB_RUN_BIN); b_bytes(&b, "/bin/sh");
    b_u8(&b, SUB_RUN_ARG); b_u64(&b, 1); b_bytes(&b, "sh");
    b_u8(&b, SUB_RUN_PTY); b_u32(&b, 40); b_u32(&b, 132);
    b_u8(&b, 0);
    b_u64(&b, 12); b_u8(&b, MSG_RESIZE);
    b_u8(&b, SUB_RESIZE_ID); b_u64(&b, 3); b_u8(&b, SUB_RESIZE_ROWS); b_u32(&b, 50); b_u8(&b, SUB_RESIZE_COLS); b_u32(&b, 200);
    b_u8(&b, 0);
    struct request req;
    size_t used;
    int err;
    CHECK(wire_parse_request(b.buf, b.len, &req, &used, &err, 1) == PARSE_COMPLETE && req.pty && req.rows == 40 && req.cols == 132);
    CHECK(wire_parse_request(b.buf + used, b.len - used, &req, &used, &err, 1) == PARSE_COMPLETE);
    CHECK(req.type == MSG_RESIZE && req.process_id == 3 && req.rows == 50 && req.cols == 200);
}

static void test_resumed(void) {
    static const char entropy[32] = "0123456789abcdef0123456789abcdef";
    struct builder b = {{0}, 0};
    b_u64(&b, 13); b_u8(&b, MSG_RESUMED);
    b_u8(&b, SUB_RESUMED_TIME_NS); b_u64(&b, 1795333100123456789ull);
    b_u8(&b, SUB_RESUMED_ENTROPY); b_u64(&b, sizeof entropy); memcpy(b.buf + b.len, entropy, sizeof entropy); b.len += sizeof entropy;
    b_u8(&b, 0);
    struct request req;
    size_t used;
    int err;
    CHECK(wire_parse_request(b.buf, b.len, &req, &used, &err, 1) == PARSE_COMPLETE && used == b.len);
    CHECK(req.type == MSG_RESUMED && req.has_time && req.time_ns == 1795333100123456789ull);
    CHECK(req.entropy.len == sizeof entropy && memcmp(req.entropy.data, entropy, sizeof entropy) == 0);
    /* Too little entropy is refused, so a host bug cannot leave restored VMs sharing a seed. */
    struct builder s = {{0}, 0};
    b_u64(&s, 14); b_u8(&s, MSG_RESUMED);
    b_u8(&s, SUB_RESUMED_ENTROPY); b_u64(&s, 4); memcpy(s.buf + s.len, "abcd", 4); s.len += 4;
    b_u8(&s, 0);
    CHECK(wire_parse_request(s.buf, s.len, &req, &used, &err, 1) == PARSE_COMPLETE && req.soft_error == EINVAL && req.id == 14);
    /* Too much stops from the length alone, before the data has arrived. */
    struct builder l = {{0}, 0};
    b_u64(&l, 15); b_u8(&l, MSG_RESUMED);
    b_u8(&l, SUB_RESUMED_ENTROPY); b_u64(&l, PROTO_MAX_ENTROPY + 1);
    CHECK(wire_parse_request(l.buf, l.len, &req, &used, &err, 1) == PARSE_STOP && req.id == 15);
}

/* CLOCK: a signed step (two's complement on the wire), optional; an extension like the others. */
static void test_clock(void) {
    int err;
    struct request req;
    struct builder b = {{0}, 0};
    b_u64(&b, 16); b_u8(&b, MSG_CLOCK); b_u8(&b, SUB_CLOCK_STEP_NS); b_u64(&b, (uint64_t)-1234567890123ll); b_u8(&b, 0);
    CHECK(parse_ext(&b, &err, &req, 1) == PARSE_COMPLETE && req.type == MSG_CLOCK && req.clock_step_ns == -1234567890123ll);
    CHECK(parse_ext(&b, &err, &req, 0) == PARSE_STOP && err == ENOPROTOOPT);

    b.len = 0;
    b_u64(&b, 17); b_u8(&b, MSG_CLOCK); b_u8(&b, SUB_CLOCK_STEP_NS); b_u64(&b, 5000000); b_u8(&b, 0);
    CHECK(parse_ext(&b, &err, &req, 1) == PARSE_COMPLETE && req.clock_step_ns == 5000000);

    b.len = 0;
    b_u64(&b, 18); b_u8(&b, MSG_CLOCK); b_u8(&b, 0); /* no step: only read the clock */
    CHECK(parse_ext(&b, &err, &req, 1) == PARSE_COMPLETE && req.id == 18 && req.clock_step_ns == 0);

    b.len = 0;
    b_u64(&b, 19); b_u8(&b, MSG_CLOCK); b_u8(&b, SUB_CLOCK_STEP_NS); b_u32(&b, 7); /* a step cut short */
    CHECK(parse_ext(&b, &err, &req, 1) == PARSE_NEED_MORE);

    b.len = 0;
    b_u64(&b, 20); b_u8(&b, MSG_CLOCK); b_u8(&b, 2); /* unknown sub-message: stop, no answer */
    CHECK(parse_ext(&b, &err, &req, 1) == PARSE_STOP && err == 0);
}

/* ---- splice_out: the outgoing stream with payloads spliced from pipes ---- */

/* A process's output: every byte depends on its position, so a byte lost, repeated or moved shows. */
static void fill_pattern(uint8_t *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 31 + seed + i / 251) & 0xff);
}

/* What the host must read: an ERR queued before, OUTPUT_DATA for the payload, a PROCESS_DIED
 * queued while it was in flight. */
static void expected_stream(struct obuf *ref, const uint8_t *payload, size_t n) {
    CHECK(wire_err(ref, 7, EIO) == 0);
    CHECK(wire_output_data(ref, 5, 1, payload, n) == 0);
    CHECK(wire_process_died(ref, 5, 0, EXIT_EXITED) == 0);
}

/* Reads up to `max` bytes of the port pipe into got (at *len). */
static void host_reads(int port_r, uint8_t *got, size_t *len, size_t cap, size_t max) {
    if (max > cap - *len) max = cap - *len;
    ssize_t n = read(port_r, got + *len, max);
    if (n > 0) *len += (size_t)n;
}

/* A process's pipe and a port that takes 4 KiB at a time, both non-blocking. */
static void splice_pipes_open(int src[2], int port[2]) {
    CHECK(pipe2(src, O_NONBLOCK) == 0 && pipe2(port, O_NONBLOCK) == 0);
    fcntl(port[1], F_SETPIPE_SZ, 4096);
}

/* N payload bytes in the process's pipe, an ERR queued, then the payload's header: the stream
 * the splice tests drive. */
static void splice_queued_behind_err(int src[2], int port[2], struct splice_out *s, struct obuf *q,
                                     const uint8_t *payload, size_t n) {
    splice_pipes_open(src, port);
    CHECK(write(src[1], payload, n) == (ssize_t)n);
    splice_out_init(s);
    CHECK(wire_err(q, 7, EIO) == 0);
    CHECK(splice_out_queue(s, q, src[0], 5, 1) == 1);
}

static void splice_pipes_close(struct obuf *q, struct obuf *ref, int src[2], int port[2]) {
    free(q->data);
    free(ref->data);
    close(src[0]); close(src[1]); close(port[0]); close(port[1]);
}

/* A port that takes 4 KiB at a time and a host reading odd amounts: splices are short, the stream
 * waits on EAGAIN with a payload half-sent, and still comes out whole and in order. */
static void test_splice_short_port(void) {
    enum { N = 60000 };
    static uint8_t payload[N], got[N + 4096];
    fill_pattern(payload, N, 1);
    int src[2], port[2];
    struct obuf q = {0}, ref = {0};
    struct splice_out s;
    splice_queued_behind_err(src, port, &s, &q, payload, N);
    CHECK(splice_out_busy(&s) && splice_out_from(&s, src[0]) && s.left == N);
    CHECK(splice_out_queue(&s, &q, src[0], 5, 1) == 0); /* one payload in flight at a time */
    CHECK(wire_process_died(&q, 5, 0, EXIT_EXITED) == 0);
    size_t len = 0;
    int waits_mid_payload = 0, rounds = 0;
    for (;;) {
        int r = splice_out_flush(&s, &q, port[1]);
        CHECK(r == 0 || r == -EAGAIN);
        if (r == -EAGAIN && splice_out_busy(&s) && s.before == 0 && s.left < N) waits_mid_payload++;
        if (r == 0) break;
        host_reads(port[0], got, &len, sizeof got, 1000 + (size_t)(rounds++ % 7) * 333);
        if (rounds > 10000) break;
    }
    while (len < sizeof got) {
        size_t before = len;
        host_reads(port[0], got, &len, sizeof got, 4096);
        if (len == before) break;
    }
    CHECK(waits_mid_payload > 0);
    CHECK(!splice_out_busy(&s) && obuf_pending(&q) == 0);
    expected_stream(&ref, payload, N);
    CHECK(len == obuf_pending(&ref) && !memcmp(got, ref.data, len));
    char c;
    CHECK(read(src[0], &c, 1) < 0 && errno == EAGAIN); /* exactly the payload was taken */
    splice_pipes_close(&q, &ref, src, port);
}

/* A process dies with a payload half-sent: the rest is read out of its pipe into its place, and
 * what the pipe held after it (drained by reading) follows it. */
static void test_splice_taken_back(void) {
    enum { N = 50000, M = 3000 };
    static uint8_t payload[N + M], got[N + M + 4096];
    fill_pattern(payload, N + M, 2);
    int src[2], port[2];
    struct obuf q = {0}, ref = {0};
    struct splice_out s;
    splice_queued_behind_err(src, port, &s, &q, payload, N);
    CHECK(write(src[1], payload + N, M) == M); /* written after the header went in */
    size_t len = 0;
    CHECK(splice_out_flush(&s, &q, port[1]) == -EAGAIN); /* the ERR and the header */
    host_reads(port[0], got, &len, sizeof got, 4096);
    CHECK(splice_out_flush(&s, &q, port[1]) == -EAGAIN); /* a page of the payload */
    CHECK(splice_out_busy(&s) && s.left < N); /* part of the payload is on the port */
    CHECK(splice_out_materialize(&s, &q) == 0);
    CHECK(!splice_out_busy(&s));
    uint8_t rest[M];
    CHECK(read(src[0], rest, M) == M && !memcmp(rest, payload + N, M));
    CHECK(wire_output_data(&q, 5, 1, rest, M) == 0);
    CHECK(wire_process_died(&q, 5, 0, EXIT_EXITED) == 0);
    for (int rounds = 0; rounds < 10000; rounds++) {
        int r = splice_out_flush(&s, &q, port[1]);
        host_reads(port[0], got, &len, sizeof got, 4096);
        if (r == 0) break;
    }
    host_reads(port[0], got, &len, sizeof got, 4096);
    CHECK(wire_err(&ref, 7, EIO) == 0);
    CHECK(wire_output_data(&ref, 5, 1, payload, N) == 0);
    CHECK(wire_output_data(&ref, 5, 1, payload + N, M) == 0);
    CHECK(wire_process_died(&ref, 5, 0, EXIT_EXITED) == 0);
    CHECK(len == obuf_pending(&ref) && !memcmp(got, ref.data, len));
    splice_pipes_close(&q, &ref, src, port);
}

/* A port splice refuses (an O_APPEND file gives EINVAL): the payload is sent as bytes, in its
 * place, and later chunks are not offered to splice. */
static void test_splice_refused(void) {
    enum { N = 20000 };
    static uint8_t payload[N], got[N + 4096];
    fill_pattern(payload, N, 3);
    char path[] = "/tmp/splice_out_test.XXXXXX";
    int tmp = mkstemp(path);
    int port = open(path, O_WRONLY | O_APPEND);
    int back = open(path, O_RDONLY);
    unlink(path);
    close(tmp);
    int src[2];
    CHECK(port >= 0 && back >= 0 && pipe2(src, O_NONBLOCK) == 0);
    CHECK(write(src[1], payload, N) == N);
    struct obuf q = {0}, ref = {0};
    struct splice_out s;
    splice_out_init(&s);
    CHECK(wire_err(&q, 7, EIO) == 0);
    CHECK(splice_out_queue(&s, &q, src[0], 5, 1) == 1);
    CHECK(wire_process_died(&q, 5, 0, EXIT_EXITED) == 0);
    CHECK(splice_out_flush(&s, &q, port) == 0);
    CHECK(s.unsupported && !splice_out_busy(&s));
    CHECK(write(src[1], "x", 1) == 1);
    CHECK(splice_out_queue(&s, &q, src[0], 5, 1) == 0);
    ssize_t n = read(back, got, sizeof got);
    expected_stream(&ref, payload, N);
    CHECK(n == (ssize_t)obuf_pending(&ref) && !memcmp(got, ref.data, obuf_pending(&ref)));
    free(q.data);
    free(ref.data);
    close(src[0]); close(src[1]); close(port); close(back);
}

int main(void) {
    test_splice_short_port();
    test_splice_taken_back();
    test_splice_refused();
    test_resumed();
    test_clock();
    test_pty_and_resize();
    test_run_process_parses();
    test_every_prefix_needs_more();
    test_two_requests_back_to_back();
    test_upstream_stop_paths();
    test_extensions_only_after_hello();
    test_soft_errors();
    test_net_messages();
    test_encoders();
    printf("wire_test: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
