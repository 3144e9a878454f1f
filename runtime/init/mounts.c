#include "mounts.h"
#include "../include/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOWER "/mnt/image"
#define RW "/mnt/rw"
#define NEWROOT "/mnt/root"

static void must_mkdir(const char *path, mode_t mode, const char *step) {
    if (mkdir(path, mode) < 0 && errno != EEXIST) boot_fatal(step, errno);
}

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                       const char *data, const char *step) {
    if (mount(src, dst, type, flags, data) < 0) boot_fatal(step, errno);
}

/* mkdir -p; returns 0 or -errno. */
static int make_dirs(const char *path, mode_t mode) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, mode) < 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST) return -errno;
    return 0;
}

void mounts_early(void) {
    mkdir("/dev", 0755);
    must_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "size=2M,mode=0755", "mount-dev");
    int fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd >= 0) {
        for (int i = 0; i < 3; i++) dup2(fd, i);
        if (fd > 2) close(fd);
    }
    must_mkdir("/proc", 0555, "mkdir-proc");
    must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "mount-proc");
    must_mkdir("/sys", 0555, "mkdir-sys");
    must_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "mount-sys");
}

/* virtio-blk is probed before init runs, but give devtmpfs a moment all the same. */
static void wait_for_device(const char *path) {
    for (int i = 0; i < 200; i++) {
        if (access(path, F_OK) == 0) return;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    boot_fatal("root-device", ENOENT);
}

static void move_into(const char *src, const char *dst, const char *step) {
    char target[128];
    snprintf(target, sizeof target, NEWROOT "%s", dst);
    make_dirs(target, 0755);
    must_mount(src, target, NULL, MS_MOVE, NULL, step);
}

int mounts_switch_root(const struct boot_options *opts) {
    char data[64];
    must_mkdir("/mnt", 0755, "mkdir-mnt");
    must_mkdir(LOWER, 0755, "mkdir-lower");
    wait_for_device(opts->root_device);
    must_mount(opts->root_device, LOWER, "squashfs", MS_RDONLY, NULL, "mount-image");

    /* A provider's writable layer: a tmpfs of 128 MB (ya-runtime-vm 0.2-0.4). */
    must_mkdir(RW, 0755, "mkdir-rw");
    snprintf(data, sizeof data, "size=%uM,mode=0755", opts->overlay_mb);
    must_mount("tmpfs", RW, "tmpfs", MS_NOSUID | MS_NODEV, data, "mount-upper");
    must_mkdir(RW "/upper", 0755, "mkdir-upper");
    must_mkdir(RW "/work", 0755, "mkdir-work");
    int upper = open(RW "/upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (upper < 0) boot_fatal("open-upper", errno);

    must_mkdir(NEWROOT, 0755, "mkdir-root");
    must_mount("overlay", NEWROOT, "overlay", 0,
               "lowerdir=" LOWER ",upperdir=" RW "/upper,workdir=" RW "/work", "mount-overlay");

    move_into("/dev", "/dev", "move-dev");
    move_into("/proc", "/proc", "move-proc");
    move_into("/sys", "/sys", "move-sys");
    if (chdir(NEWROOT) < 0) boot_fatal("chdir-root", errno);
    must_mount(".", "/", NULL, MS_MOVE, NULL, "move-root");
    if (chroot(".") < 0) boot_fatal("chroot", errno);
    if (chdir("/") < 0) boot_fatal("chdir-root", errno);

    make_dirs("/dev/pts", 0755);
    must_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666",
               "mount-devpts");
    make_dirs("/dev/shm", 01777);
    must_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", "mount-shm");
    make_dirs("/tmp", 01777);
    must_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", "mount-tmp");
    return upper;
}

static int write_file(const char *path, const char *text) {
    unlink(path); /* a dangling symlink (systemd's resolv.conf) must not make this fail */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int err = (w < 0 || (size_t)w != n) ? -EIO : 0;
    close(fd);
    return err;
}

static void loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) boot_fatal("socket-lo", errno);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) boot_fatal("lo-flags", errno);
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    /* The kernel gives lo 127.0.0.1/8 and ::1 itself once it is up. */
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) boot_fatal("lo-up", errno);
    close(s);
}

void mounts_identity(const struct boot_options *opts) {
    char hosts[256];
    if (sethostname(opts->hostname, strlen(opts->hostname)) < 0) boot_fatal("hostname", errno);
    /* As a provider: these writes fail when the image has no /etc, and so does the boot. */
    int err = write_file("/etc/resolv.conf", "nameserver 1.1.1.1\nnameserver 8.8.8.8\n");
    if (err) boot_fatal("resolv.conf", -err);
    snprintf(hosts, sizeof hosts,
             "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n",
             opts->hostname);
    err = write_file("/etc/hosts", hosts);
    if (err) boot_fatal("hosts", -err);
    loopback_up();
}

int mounts_volume(const char *tag, const char *path) {
    char data[128];
    if (path[0] != '/') return -EINVAL;
    int err = make_dirs(path, 0755);
    if (err) return err;
    snprintf(data, sizeof data, "trans=virtio,version=9p2000.L,msize=%u", PROTO_9P_MSIZE);
    if (mount(tag, path, "9p", 0, data) < 0) return -errno;
    return 0;
}
