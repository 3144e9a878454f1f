/* UPPER_USAGE: the largest files written into the overlay's writable layer. */
#ifndef GVMI_UPPER_USAGE_H
#define GVMI_UPPER_USAGE_H

#include <stdint.h>
#include "wire.h"

/* Answers msg_id with up to `limit` (size, path) pairs, largest first. */
void upper_usage_reply(struct obuf *out, uint64_t msg_id, int upper_fd, uint32_t limit);

#endif
