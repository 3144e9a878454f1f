#include "deploy_volumes.h"

#include "boot.h"
#include "dirpath.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* Upstream reads `vol-%d-…` with no bound; a deploy rarely has more than a handful. */
#define MAX_VOLUMES 32
/* busybox's mke2fs, put in the initramfs by runtime/build.sh: upstream ships a single-applet
 * busybox mkfs.ext2 (init-container/Makefile) and runs it the same way. */
#define MKE2FS "/mke2fs"
/* Where init builds the image root (mounts.c NEWROOT) while these are mounted. */
#define NEWROOT "/mnt/newroot"

enum kind { KIND_NONE = 0, KIND_RAM = 1, KIND_STORAGE = 2 };

struct volume {
    char path[512];
    char errors[16];
    unsigned long long size; /* ram: bytes */
    int has_path, has_size, has_errors;
    enum kind kind;
    char device[32]; /* storage: /dev/vdX */
    int fd;          /* the mounted volume's root, for STATS; -1 until mounted */
};

static struct volume volumes[MAX_VOLUMES];

static void copy_token(char *dst, size_t cap, const char *src) {
    size_t n = strcspn(src, " \t\n");
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void parse_token(const char *p) {
    char *end;
    unsigned long n = strtoul(p + 4, &end, 10);
    if (end == p + 4 || *end != '-' || n >= MAX_VOLUMES) return;
    struct volume *v = &volumes[n];
    end++;
    if (!strncmp(end, "path=", 5)) {
        copy_token(v->path, sizeof v->path, end + 5);
        v->has_path = 1;
    } else if (!strncmp(end, "size=", 5)) {
        v->size = strtoull(end + 5, NULL, 10);
        v->has_size = 1;
    } else if (!strncmp(end, "errors=", 7)) {
        copy_token(v->errors, sizeof v->errors, end + 7);
        v->has_errors = 1;
    }
}

void deploy_volumes_parse(const char *cmdline) {
    for (int i = 0; i < MAX_VOLUMES; i++) volumes[i].fd = -1;
    const char *p = cmdline;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!strncmp(p, "vol-", 4)) parse_token(p);
        p = strpbrk(p, " \t\n");
    }
    /* Upstream: every `vol-N-size=` with a `vol-N-path=` is a tmpfs (init.c:2595-2621); a size
     * without a path is only complained about. Storage volumes are found by their disks. */
    for (int i = 0; i < MAX_VOLUMES; i++) {
        if (volumes[i].has_size && volumes[i].has_path) volumes[i].kind = KIND_RAM;
        else if (volumes[i].has_size) boot_log("gvmi-init: vol-%d-size without vol-%d-path, ignored", i, i);
    }
}

static void format_ext2(const char *device) {
    pid_t pid = fork();
    if (pid < 0) boot_fatal("deploy-mkfs", errno);
    if (pid == 0) {
        /* Upstream hides the formatter's stdout; its stderr goes to the console. */
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 1);
        execl(MKE2FS, "mke2fs", device, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) boot_fatal("deploy-mkfs", errno);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        boot_log("gvmi-init: mke2fs %s failed (status %d)", device, status);
        boot_fatal("deploy-mkfs", EIO);
    }
}

/* A virtio-blk disk's serial (QEMU's serial=), as /sys/class/block/vdX/serial has it. */
static int read_serial(const char *disk, char *out, size_t cap) {
    char path[300];
    snprintf(path, sizeof path, "/sys/class/block/%s/serial", disk);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n < 0) return -1;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) n--;
    out[n] = 0;
    return 0;
}

void deploy_volumes_prepare(void) {
    /* Upstream's host names every storage disk with `vol-N-errors=`: without one there is no disk
     * to look for, and a boot without deploy volumes pays nothing for this. */
    int storage = 0;
    for (int i = 0; i < MAX_VOLUMES; i++) storage |= volumes[i].has_errors;
    if (!storage) return;
    /* The disks' serials are in sysfs, which init mounts in the initramfs for this (upstream mounts
     * it there at start); like the early /proc, it is hidden once the image root is switched to. */
    if (mkdir("/sys", 0755) < 0 && errno != EEXIST) boot_fatal("deploy-volume", errno);
    if (mount("sysfs", "/sys", "sysfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL) < 0 && errno != EBUSY)
        boot_fatal("deploy-volume", errno);
    DIR *d = opendir("/sys/class/block");
    if (!d) boot_fatal("deploy-volume", errno);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "vd", 2) != 0) continue;
        char serial[64];
        if (read_serial(e->d_name, serial, sizeof serial) < 0 || strncmp(serial, "vol-", 4) != 0) continue;
        char *end;
        unsigned long n = strtoul(serial + 4, &end, 10);
        if (end == serial + 4 || *end || n >= MAX_VOLUMES) continue;
        struct volume *v = &volumes[n];
        if (snprintf(v->device, sizeof v->device, "/dev/%s", e->d_name) >= (int)sizeof v->device) continue;
        format_ext2(v->device);
        /* Upstream dereferences both without a check: a disk the command line does not describe
         * stops its init. */
        if (!v->has_path || !v->has_errors) {
            boot_log("gvmi-init: storage disk %s (%s) has no vol-%lu-path or vol-%lu-errors", serial, v->device, n, n);
            boot_fatal("deploy-volume", EINVAL);
        }
        v->kind = KIND_STORAGE;
    }
    closedir(d);
}

static int is_root(const struct volume *v) {
    return v->kind != KIND_NONE && v->path[strspn(v->path, "/")] == 0;
}

static void mount_volume(const struct volume *v, const char *target) {
    if (v->kind == KIND_RAM) {
        char data[64];
        snprintf(data, sizeof data, "mode=0700,size=%llu", v->size);
        if (mount("tmpfs", target, "tmpfs", MS_NODEV, data) < 0) boot_fatal("deploy-volume", errno);
    } else {
        char data[32];
        snprintf(data, sizeof data, "errors=%s", v->errors);
        if (mount(v->device, target, "ext2", MS_NODEV, data) < 0) boot_fatal("deploy-volume", errno);
    }
}

int deploy_volumes_mount_root(const char *dir) {
    /* Upstream takes the first in its list (disks, then tmpfs) whose path is exactly "/". */
    for (int kind = KIND_STORAGE; kind >= KIND_RAM; kind--) {
        for (int i = 0; i < MAX_VOLUMES; i++) {
            if ((int)volumes[i].kind == kind && is_root(&volumes[i])) {
                mount_volume(&volumes[i], dir);
                return 1;
            }
        }
    }
    return 0;
}

void deploy_volumes_mount(int root_fd, unsigned dir_mode) {
    for (int kind = KIND_STORAGE; kind >= KIND_RAM; kind--) {
        for (int i = 0; i < MAX_VOLUMES; i++) {
            struct volume *v = &volumes[i];
            if ((int)v->kind != kind || is_root(v)) continue;
            int dir;
            int err = dirpath_create_at(root_fd, v->path, dir_mode, &dir);
            if (err) {
                boot_log("gvmi-init: deploy volume %s: cannot make its directory", v->path);
                boot_fatal("deploy-volume", -err);
            }
            /* Through the open directory, as MOUNT_VOLUME: the path is not looked up twice. */
            char target[32];
            snprintf(target, sizeof target, "/proc/self/fd/%d", dir);
            mount_volume(v, target);
            close(dir);
            char mounted[sizeof NEWROOT + sizeof v->path];
            /* By name, not through the fd above: that one is the directory the volume now covers. */
            if (snprintf(mounted, sizeof mounted, NEWROOT "%s", v->path) < (int)sizeof mounted)
                v->fd = open(mounted, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
    }
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

size_t deploy_volumes_stats(uint8_t *buf, size_t cap) {
    size_t used = 0;
    for (int i = 0; i < MAX_VOLUMES; i++) {
        const struct volume *v = &volumes[i];
        if (v->fd < 0) continue;
        struct statfs fs;
        if (fstatfs(v->fd, &fs) < 0) continue;
        size_t len = strlen(v->path);
        if (used + 40 + len > cap) break;
        put_u64(buf + used, (uint64_t)v->kind);
        put_u64(buf + used + 8, (uint64_t)fs.f_blocks * fs.f_bsize);
        put_u64(buf + used + 16, (uint64_t)(fs.f_blocks - fs.f_bfree) * fs.f_bsize);
        put_u64(buf + used + 24, (fs.f_flags & ST_RDONLY) ? 1u : 0u);
        put_u64(buf + used + 32, len);
        memcpy(buf + used + 40, v->path, len);
        used += 40 + len;
    }
    return used;
}
