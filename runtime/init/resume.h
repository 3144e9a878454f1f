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

#endif
