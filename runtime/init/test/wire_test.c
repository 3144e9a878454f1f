/* Unit tests of the protocol code (wire.c), run on the host by `make test-c`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    CHECK(wire_parse_request(b.buf, b.len, &req, &used, &err) == PARSE_COMPLETE);
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
        if (wire_parse_request(b.buf, n, &req, &used, &err) != PARSE_NEED_MORE) all_need_more = 0;
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
    CHECK(wire_parse_request(b.buf, b.len, &req, &used, &err) == PARSE_COMPLETE && used == 10 && req.type == MSG_STATS);
    CHECK(wire_parse_request(b.buf + used, b.len - used, &req, &used, &err) == PARSE_COMPLETE && req.id == 2 && req.type == MSG_QUIT);
}

static enum parse_result parse(struct builder *b, int *err, uint64_t *id) {
    struct request req;
    size_t used;
    enum parse_result r = wire_parse_request(b->buf, b->len, &req, &used, err);
    *id = req.id;
    return r;
}

static void test_bad_input_is_refused_with_errno(void) {
    int err;
    uint64_t id;
    struct builder b = {{0}, 0};
    b_u64(&b, 9); b_u8(&b, 200); /* unknown type */
    CHECK(parse(&b, &err, &id) == PARSE_INVALID && err == EPROTO && id == 9);

    b.len = 0;
    b_u64(&b, 3); b_u8(&b, MSG_RUN_PROCESS); b_u8(&b, SUB_RUN_BIN); b_u64(&b, 1ull << 60); /* huge */
    CHECK(parse(&b, &err, &id) == PARSE_INVALID && err == E2BIG && id == 3);

    b.len = 0;
    b_u64(&b, 4); b_u8(&b, MSG_KILL_PROCESS); b_u8(&b, 99); /* unknown subtype */
    CHECK(parse(&b, &err, &id) == PARSE_INVALID && err == EPROTO);

    b.len = 0;
    b_u64(&b, 5); b_u8(&b, MSG_NET_CTL);
    CHECK(parse(&b, &err, &id) == PARSE_INVALID && err == EPROTONOSUPPORT);

    b.len = 0;
    b_u64(&b, 0); b_u8(&b, MSG_QUIT); b_u8(&b, 0); /* id 0 is reserved for notifications */
    CHECK(parse(&b, &err, &id) == PARSE_INVALID && err == EINVAL);

    b.len = 0;
    b_u64(&b, 6); b_u8(&b, MSG_RUN_PROCESS); b_u8(&b, SUB_RUN_RFD); b_u32(&b, 7); b_u8(&b, REDIRECT_PIPE_PUSH);
    CHECK(parse(&b, &err, &id) == PARSE_INVALID && err == EINVAL); /* fd out of range */

    b.len = 0;
    b_u64(&b, 8); b_u8(&b, MSG_RUN_PROCESS); b_u8(&b, SUB_RUN_ARG); b_u64(&b, PROTO_MAX_ARRAY + 1);
    CHECK(parse(&b, &err, &id) == PARSE_INVALID && err == E2BIG);
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
    free(o.data);
}

static void test_pty_and_resize(void) {
    struct builder b = {{0}, 0};
    b_u64(&b, 11); b_u8(&b, MSG_RUN_PROCESS);
    b_u8(&b, SUB_RUN_BIN); b_bytes(&b, "/bin/sh");
    b_u8(&b, SUB_RUN_PTY); b_u32(&b, 40); b_u32(&b, 132);
    b_u8(&b, 0);
    b_u64(&b, 12); b_u8(&b, MSG_RESIZE);
    b_u8(&b, SUB_RESIZE_ID); b_u64(&b, 3); b_u8(&b, SUB_RESIZE_ROWS); b_u32(&b, 50); b_u8(&b, SUB_RESIZE_COLS); b_u32(&b, 200);
    b_u8(&b, 0);
    struct request req;
    size_t used;
    int err;
    CHECK(wire_parse_request(b.buf, b.len, &req, &used, &err) == PARSE_COMPLETE && req.pty && req.rows == 40 && req.cols == 132);
    CHECK(wire_parse_request(b.buf + used, b.len - used, &req, &used, &err) == PARSE_COMPLETE);
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
    CHECK(wire_parse_request(b.buf, b.len, &req, &used, &err) == PARSE_COMPLETE && used == b.len);
    CHECK(req.type == MSG_RESUMED && req.has_time && req.time_ns == 1795333100123456789ull);
    CHECK(req.entropy.len == sizeof entropy && memcmp(req.entropy.data, entropy, sizeof entropy) == 0);
    /* Too little entropy is refused, so a host bug cannot leave restored VMs sharing a seed. */
    struct builder s = {{0}, 0};
    b_u64(&s, 14); b_u8(&s, MSG_RESUMED);
    b_u8(&s, SUB_RESUMED_ENTROPY); b_u64(&s, 4); memcpy(s.buf + s.len, "abcd", 4); s.len += 4;
    b_u8(&s, 0);
    CHECK(wire_parse_request(s.buf, s.len, &req, &used, &err) == PARSE_INVALID && err == EINVAL && req.id == 14);
    /* Too much is refused from the length alone, before the data has arrived. */
    struct builder l = {{0}, 0};
    b_u64(&l, 15); b_u8(&l, MSG_RESUMED);
    b_u8(&l, SUB_RESUMED_ENTROPY); b_u64(&l, PROTO_MAX_ENTROPY + 1);
    CHECK(wire_parse_request(l.buf, l.len, &req, &used, &err) == PARSE_INVALID && err == EINVAL && req.id == 15);
}

int main(void) {
    test_resumed();
    test_pty_and_resize();
    test_run_process_parses();
    test_every_prefix_needs_more();
    test_two_requests_back_to_back();
    test_bad_input_is_refused_with_errno();
    test_encoders();
    printf("wire_test: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
