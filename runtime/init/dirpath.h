/* Creating a directory path inside the image the way a provider's init does (ya-runtime-vm
 * init.c create_dir_path: v0.4.2 375-427, v0.5.2 424-486), for volume mount points, the agent's
 * private directory and the per-process output directories. */
#ifndef GVMI_DIRPATH_H
#define GVMI_DIRPATH_H

#include <sys/types.h>

/* `path` must be absolute. Walks it one component at a time from the image root: an empty, `.` or
 * `..` component is -EINVAL when the walk reaches it (so "/a//b" creates nothing, but "/a/../b"
 * has created /a by then, as upstream); each missing component is made with `mode` (less the
 * umask); every component is then opened with O_NOFOLLOW, so a symlink anywhere in the path is
 * -ELOOP and a file is -ENOTDIR. Returns 0 or -errno; with out_fd, the last directory stays open
 * there (O_CLOEXEC), to be used through /proc/self/fd/N so that nothing can swap it underneath. */
int dirpath_create(const char *path, mode_t mode, int *out_fd);

/* The same walk from the directory `root_fd` instead of "/" (before init has moved into the
 * image root: deploy volumes are mounted there first, as upstream mounts them in its SYSROOT). */
int dirpath_create_at(int root_fd, const char *path, mode_t mode, int *out_fd);

#endif
