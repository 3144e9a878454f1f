#define _GNU_SOURCE
#include "splice_out.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../include/proto.h"

void splice_out_init(struct splice_out *s) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

int splice_out_busy(const struct splice_out *s) { return s->fd >= 0; }

int splice_out_from(const struct splice_out *s, int pipe_fd) { return s->fd >= 0 && s->fd == pipe_fd; }

int splice_out_queue(struct splice_out *s, struct obuf *q, int pipe_fd, uint64_t process_id,
                     uint32_t fd) {
    if (s->fd >= 0 || s->unsupported) return 0;
    int avail = 0;
    /* Only the agent reads the pipe, so what it holds now is there when the splice comes. */
    if (ioctl(pipe_fd, FIONREAD, &avail) < 0 || avail <= 0) return 0;
    uint64_t len = (uint64_t)avail < PROTO_MAX_OUTPUT_CHUNK ? (uint64_t)avail : PROTO_MAX_OUTPUT_CHUNK;
    if (wire_output_data_header(q, process_id, fd, len) < 0) return -ENOMEM;
    s->fd = pipe_fd;
    s->left = len;
    s->before = obuf_pending(q);
    return 1;
}

int splice_out_materialize(struct splice_out *s, struct obuf *q) {
    if (s->fd < 0) return 0;
    size_t n = (size_t)s->left;
    if (obuf_reserve(q, n) < 0) return -ENOMEM;
    uint8_t *at = q->data + q->head + s->before;
    memmove(at + n, at, obuf_pending(q) - s->before);
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(s->fd, at + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    /* The header already promised n bytes. The pipe cannot hold fewer (nobody else reads it);
     * were it to, zeros keep the frame whole rather than the whole stream out of step. */
    memset(at + got, 0, n - got);
    q->len += n;
    s->fd = -1;
    s->left = 0;
    s->before = 0;
    return 0;
}

int splice_out_flush(struct splice_out *s, struct obuf *q, int port) {
    for (;;) {
        size_t n = s->fd >= 0 ? s->before : obuf_pending(q);
        if (n) {
            ssize_t w = write(port, q->data + q->head, n);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return -errno;
            if (w == 0) return -EAGAIN;
            obuf_consume(q, (size_t)w);
            if (s->fd >= 0) s->before -= (size_t)w;
            continue;
        }
        if (s->fd < 0) return 0;
        ssize_t r = splice(s->fd, NULL, port, NULL, (size_t)s->left, SPLICE_F_NONBLOCK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EINVAL) {
            /* A port (or kernel) without splice_write: send this payload as bytes, copy later ones. */
            s->unsupported = 1;
            if (splice_out_materialize(s, q) < 0) return -ENOMEM;
            continue;
        }
        if (r < 0) return -errno;
        if (r == 0) { /* the pipe is empty: cannot be (see materialize); keep the frame whole */
            if (splice_out_materialize(s, q) < 0) return -ENOMEM;
            continue;
        }
        s->left -= (uint64_t)r;
        if (s->left == 0) s->fd = -1;
    }
}
