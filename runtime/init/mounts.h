/* Making the guest look like a Golem provider's VM (reference §2). */
#ifndef GVMI_MOUNTS_H
#define GVMI_MOUNTS_H

#include "boot.h"

/* /dev (devtmpfs) with the console on fds 0-2, /proc, /sys. Run first. */
void mounts_early(void);

/* squashfs lower + overlay upper on a tmpfs of opts->overlay_mb, switched into as /, then the
 * provider's mounts and files. Returns an open directory fd of the upper layer (for STATS and
 * UPPER_USAGE, which look at the writable layer the guest itself can no longer see). */
int mounts_switch_root(const struct boot_options *opts);

/* hostname, /etc/hosts, /etc/resolv.conf, lo up. */
void mounts_identity(const struct boot_options *opts);

/* MOUNT_VOLUME: a 9p export over `path` (created when missing). Returns 0 or -errno. */
int mounts_volume(const char *tag, const char *path);

#endif
