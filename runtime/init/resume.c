#include "resume.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include "../include/proto.h"
#include "boot.h"

/* From <linux/random.h>, which musl's toolchain does not ship (the ABI is stable). */
struct rand_pool_info {
    int entropy_count; /* bits credited */
    int buf_size;      /* bytes in buf */
    uint8_t buf[];
};
#define RNDADDENTROPY _IOW('R', 0x03, int[2])
#define RNDRESEEDCRNG _IO('R', 0x07)

static int add_entropy(int fd, const uint8_t *entropy, size_t len) {
    union {
        struct rand_pool_info info;
        uint8_t bytes[sizeof(struct rand_pool_info) + PROTO_MAX_ENTROPY];
    } pool;
    if (len > PROTO_MAX_ENTROPY) return -EINVAL;
    pool.info.entropy_count = (int)(len * 8);
    pool.info.buf_size = (int)len;
    memcpy(pool.info.buf, entropy, len);
    return ioctl(fd, RNDADDENTROPY, &pool) < 0 ? -errno : 0;
}

int resume_refresh(uint64_t realtime_ns, const uint8_t *entropy, size_t len) {
    /* The generator first: sharing random output with sibling VMs is the worse of the two. */
    int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int r = add_entropy(fd, entropy, len);
    /* Crediting entropy alone does not reseed a generator that is already initialised. */
    if (r == 0 && ioctl(fd, RNDRESEEDCRNG) < 0) r = -errno;
    close(fd);
    if (r) return r;
    struct timespec ts = {.tv_sec = (time_t)(realtime_ns / 1000000000u), .tv_nsec = (long)(realtime_ns % 1000000000u)};
    if (clock_settime(CLOCK_REALTIME, &ts) < 0) return -errno;
    /* Marks the restore in the console, where the boot messages of this VM are missing. */
    boot_log("gvmi-init: resumed from a snapshot: clock set, random generator reseeded");
    return 0;
}

int resume_clock(int64_t step_ns, uint64_t *now_ns) {
    /* ADJ_SETOFFSET adds the step inside the kernel: seconds, then µs in [0, 1e6). In µs, not
     * ADJ_NANO: that mode would stay set (STA_NANO) and change what adjtimex shows in the guest. */
    int64_t step_us = step_ns / 1000;
    if (step_us) {
        struct timex tx = {.modes = ADJ_SETOFFSET};
        int64_t sec = step_us / 1000000, usec = step_us % 1000000;
        if (usec < 0) { sec -= 1; usec += 1000000; }
        tx.time.tv_sec = (time_t)sec;
        tx.time.tv_usec = (suseconds_t)usec;
        if (clock_adjtime(CLOCK_REALTIME, &tx) < 0) return -errno;
    }
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) < 0) return -errno;
    if (ts.tv_sec < 0) return -ERANGE;
    *now_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return 0;
}
