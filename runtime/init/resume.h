/* RESUMED: what a VM restored from a snapshot must refresh before it serves anyone. */
#ifndef GVMI_RESUME_H
#define GVMI_RESUME_H

#include <stddef.h>
#include <stdint.h>

/* Every VM restored from one snapshot starts with the same clock and the same random state:
 * sets CLOCK_REALTIME to the host's time, credits the host's bytes to the input pool and reseeds
 * the kernel's generator, so no two restored VMs (nor a VM and its snapshot) share random output.
 * Returns 0 or -errno. */
int resume_refresh(uint64_t realtime_ns, const uint8_t *entropy, size_t len);

/* CLOCK: moves CLOCK_REALTIME by step_ns (none for 0) in one kernel call, so nothing between
 * reading and writing the clock is lost, then reads it into *now_ns. RESUMED's time was the host's
 * when it was sent, and may have waited in queues for a second on a loaded host; the host measures
 * what is left across round trips of this request and steps it away. Returns 0 or -errno. */
int resume_clock(int64_t step_ns, uint64_t *now_ns);

#endif
