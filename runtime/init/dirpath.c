#include "dirpath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int dirpath_create(const char *path, mode_t mode, int *out_fd) {
    /* init runs chrooted into the image, so "/" is the image root (upstream's g_sysroot_fd). */
    int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return -errno;
    int err = dirpath_create_at(root, path, mode, out_fd);
    close(root);
    return err;
}

int dirpath_create_at(int root_fd, const char *path, mode_t mode, int *out_fd) {
    if (path[0] != '/') return -EINVAL;
    int dir = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return -errno;
    const char *p = path;
    int err = 0;
    do {
        p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[NAME_MAX + 1];
        /* Checked as the walk reaches it, not up front: what came before is already made. */
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
            err = -EINVAL;
            break;
        }
        if (len > NAME_MAX) {
            err = -ENAMETOOLONG;
            break;
        }
        memcpy(name, p, len);
        name[len] = 0;
        if (mkdirat(dir, name, mode) < 0 && errno != EEXIST) {
            err = -errno;
            break;
        }
        int next = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            err = -errno;
            break;
        }
        close(dir);
        dir = next;
        p = end;
    } while (p);
    if (err == 0 && out_fd) {
        *out_fd = dir;
        return 0;
    }
    close(dir);
    return err;
}
