/* Push output sent without copying it through the agent. Under TCG every byte the guest copies is
 * emulated, and a pushed chunk used to be copied twice by the agent (read from the pipe into the
 * outgoing buffer, then written to the port). Here an OUTPUT_DATA header is queued in the outgoing
 * buffer with the length the pipe holds (FIONREAD), and the payload then goes from the process's
 * pipe to the port with splice(2): virtio_console's splice_write hands the pipe's pages to the
 * virtqueue.
 *
 * The stream stays in order: when a payload is queued, the bytes of the outgoing buffer pending
 * then (its header last) are written first, then the payload, then whatever was queued after.
 * Only one payload is in flight; a short splice (the port is non-blocking) leaves it in flight
 * and nothing else is written until it is finished. */
#ifndef GVMI_SPLICE_OUT_H
#define GVMI_SPLICE_OUT_H

#include <stdint.h>
#include "wire.h"

struct splice_out {
    int fd;          /* the pipe the payload is in; -1: nothing in flight */
    uint64_t left;   /* payload bytes still in that pipe */
    size_t before;   /* bytes of the outgoing buffer to write before them */
    int unsupported; /* splice was refused (EINVAL): push output is copied from then on */
};

void splice_out_init(struct splice_out *s);

/* Queues OUTPUT_DATA for what pipe_fd holds now (at most PROTO_MAX_OUTPUT_CHUNK). 1: queued (the
 * bytes stay in the pipe until splice_out_flush sends them); 0: not queued (empty pipe, a payload
 * already in flight, splice unsupported): read the pipe instead; -ENOMEM. */
int splice_out_queue(struct splice_out *s, struct obuf *q, int pipe_fd, uint64_t process_id,
                     uint32_t fd);

/* A payload is in flight (from any pipe, or from pipe_fd). */
int splice_out_busy(const struct splice_out *s);
int splice_out_from(const struct splice_out *s, int pipe_fd);

/* Writes what is pending to the port, payloads spliced in their place. 0: all written; -EAGAIN:
 * the port is full; another -errno from write/splice (the host went away: what is left stays). */
int splice_out_flush(struct splice_out *s, struct obuf *q, int port);

/* Reads the payload in flight out of its pipe into the outgoing buffer, at its place in the stream:
 * for when that pipe is about to be read or closed (a process died), or splice is refused. 0 or
 * -ENOMEM (nothing changed). */
int splice_out_materialize(struct splice_out *s, struct obuf *q);

#endif
