/* The image root and its mounts, laid out as a provider's init lays them out (reference §8 "What
 * a process sees"), per provider runtime where ya-runtime-vm 0.4.2 and 0.5.2 differ. */
#ifndef GVMI_MOUNTS_H
#define GVMI_MOUNTS_H

#include "boot.h"

/* /dev (devtmpfs) with the console on fds 0-2, and /proc (for the kernel command line). They
 * stay on the initramfs, hidden once the image root is switched into, as upstream's own are. */
void mounts_early(void);

/* The image root: an overlay (nodev) of the squashfs under a writable layer that is, for runtime
 * 0.4, its own tmpfs of opts->overlay_mb (128) MiB, and for 0.5 sized as upstream's root tmpfs
 * (half of RAM; see mounts.c); then /proc, /sys, /dev, /dev/fd, /tmp, /dev/pts, /dev/shm in it,
 * and init chroots into it. An image without /proc or /sys stops here (GVMI-INIT-FATAL image-proc
 * or image-sys), as a provider's init does. Returns an open directory fd of the writable layer
 * (for STATS and UPPER_USAGE, which look at what the guest itself can no longer see). */
int mounts_switch_root(const struct boot_options *opts);

/* /var/tmp/guest_agent_private/fds (processes.h AGENT_FDS_DIR), made at boot as upstream does,
 * with upstream's mode (0755 less the umask) for each missing component. Fatal: agent-dirs. */
void mounts_agent_directories(void);

/* MOUNT_VOLUME: the 9p export `tag` over `path`, which must be absolute with no empty, `.` or
 * `..` component (-EINVAL); missing directories are made 0755 (dirpath.h). 9p options per
 * runtime: 0.4 requests no msize, 0.5 msize=104857600. Returns 0 or -errno. */
int mounts_volume(const char *tag, const char *path);

#endif
