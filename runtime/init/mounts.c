#include "mounts.h"

#include "deploy_volumes.h"
#include "dirpath.h"
#include "processes.h" /* AGENT_FDS_DIR */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Upstream's own paths (init.c SYSROOT, /mnt/image[-0], /mnt/overlay): they show in the overlay's
 * options in /proc/mounts, so the line a process reads is the one it reads on a provider. */
#define NEWROOT "/mnt/newroot"
#define OVERLAY_DIR "/mnt/overlay"
#define LOWER_04 "/mnt/image"   /* v0.4.2 init.c:2182 */
#define LOWER_05 "/mnt/image-0" /* v0.5.2 init.c:2569, one squashfs layer */

/* What upstream's 0.5 init asks of each 9p volume (v0.5.2 init.c:1586); 0.4.2 asks no msize
 * (init.c:1399), so the kernel's default applies. */
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define MSIZE_05 STRINGIFY(PROTO_9P_MSIZE)

/* The provider runtime this boot reproduces, for MOUNT_VOLUME (set by mounts_switch_root). */
static int runtime_minor = 4;

static void must_mkdir(const char *path, mode_t mode, const char *step) {
    if (mkdir(path, mode) < 0 && errno != EEXIST) boot_fatal(step, errno);
}

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                       const char *data, const char *step) {
    if (mount(src, dst, type, flags, data) < 0) boot_fatal(step, errno);
}

void mounts_early(void) {
    mkdir("/dev", 0755);
    must_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755,size=2M", "mount-dev");
    int fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd >= 0) {
        for (int i = 0; i < 3; i++) dup2(fd, i);
        if (fd > 2) close(fd);
    }
    must_mkdir("/proc", 0700, "mkdir-proc");
    must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "mount-proc");
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

/* The squashfs, the writable layer and the overlay of both at NEWROOT. Returns the upper fd. */
static int mount_image_root(const struct boot_options *opts) {
    const char *lower = opts->runtime_minor >= 5 ? LOWER_05 : LOWER_04;
    char data[160];
    must_mkdir("/mnt", 0700, "mkdir-mnt");
    must_mkdir(lower, 0700, "mkdir-lower");
    must_mkdir(OVERLAY_DIR, 0700, "mkdir-overlay");
    must_mkdir(NEWROOT, 0755, "mkdir-root");
    /* 0.5 formats its storage disks first (scan_storage, init.c:2717); 0.4.2 has none of this. */
    if (opts->runtime_minor >= 5) deploy_volumes_prepare();
    if (opts->runtime_minor < 5) {
        /* 0.4 (init.c:2187): the writable layer is a tmpfs of its own, 128 MB on a provider. */
        snprintf(data, sizeof data, "mode=0700,size=%uM", opts->overlay_mb);
        must_mount("tmpfs", OVERLAY_DIR, "tmpfs", MS_NOSUID | MS_NODEV, data, "mount-upper");
    } else if (deploy_volumes_mount_root(OVERLAY_DIR)) {
        /* 0.5 with a deploy volume at `/` (init.c:2736-2746): a ram volume's tmpfs (mode=0700,
         * size=, nodev) or a storage volume's ext2 holds upper and work, so its size is the space
         * outside volumes. */
    } else {
        /* 0.5 (init.c:2736-2751) mounts nothing there: upper and work are directories on init's
         * root, a tmpfs it mounted itself with no options (copy_initramfs, init.c:1118), so `df /`
         * is half of the RAM the kernel counts once booted (247 MiB of a 512 MiB guest). Our root
         * is the kernel's initramfs rootfs, sized before boot-time memory was freed (~2 MiB
         * smaller), so we mount what upstream mounted: a tmpfs with no options, here. What stays
         * different: upstream's tmpfs also holds its initramfs copy (init and kernel modules), so
         * its `Used` starts that much higher. */
        must_mount("tmpfs", OVERLAY_DIR, "tmpfs", 0, NULL, "mount-upper");
    }
    wait_for_device(opts->root_device);
    must_mount(opts->root_device, lower, "squashfs", MS_RDONLY | MS_NODEV, NULL, "mount-image");
    /* Both inits make upper and work with the image root's mode (less init's umask, 022): that is
     * the mode of `/` a process sees (issue #154: 0700 roots broke non-root daemons before). */
    struct stat root;
    if (stat(lower, &root) < 0) boot_fatal("stat-image", errno);
    must_mkdir(OVERLAY_DIR "/upper", root.st_mode & 07777, "mkdir-upper");
    must_mkdir(OVERLAY_DIR "/work", root.st_mode & 07777, "mkdir-work");
    int upper = open(OVERLAY_DIR "/upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (upper < 0) boot_fatal("open-upper", errno);
    snprintf(data, sizeof data, "lowerdir=%s,upperdir=" OVERLAY_DIR "/upper,workdir=" OVERLAY_DIR "/work",
             lower);
    must_mount("overlay", NEWROOT, "overlay", MS_NODEV, data, "mount-overlay");
    if (opts->runtime_minor >= 5) {
        /* 0.5's deploy volumes, right after the overlay and before /proc (init.c:2797-2825), their
         * missing directories made with the upper's mode. */
        struct stat up;
        if (fstat(upper, &up) < 0) boot_fatal("stat-upper", errno);
        int root = open(NEWROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0) boot_fatal("open-root", errno);
        deploy_volumes_mount(root, up.st_mode & 07777);
        close(root);
    }
    return upper;
}

/* The mounts upstream makes in its SYSROOT, in its order (v0.4.2 init.c:2212-2242, v0.5.2
 * 2852-2882), so /proc/mounts lists them as a provider's does. */
static void mount_system_dirs(void) {
    /* Upstream creates /dev and /tmp when the image lacks them, with DEFAULT_DIR_PERMS... */
    int root = open(NEWROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) boot_fatal("open-root", errno);
    if (mkdirat(root, "dev", 0755) < 0 && errno != EEXIST) boot_fatal("mkdir-dev", errno);
    if (mkdirat(root, "tmp", 0755) < 0 && errno != EEXIST) boot_fatal("mkdir-tmp", errno);
    close(root);
    /* ...but not /proc and /sys: mounting there fails and its init dies (init.c:2855-2863). Images
     * from gvmkit-build always have both (Docker's init layer adds them, reference §1). */
    must_mount("proc", NEWROOT "/proc", "proc", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL, "image-proc");
    must_mount("sysfs", NEWROOT "/sys", "sysfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL, "image-sys");
    /* The same devtmpfs as the early /dev (one superblock), mounted again inside the image. */
    must_mount("devtmpfs", NEWROOT "/dev", "devtmpfs", MS_NOSUID, "mode=0755,size=2M", "mount-dev");
    if (symlink("/proc/self/fd", NEWROOT "/dev/fd") < 0 && errno != EEXIST) boot_fatal("dev-fd", errno);
    /* mode=0777 without the sticky bit, as upstream (any user may remove any file in /tmp). */
    must_mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID, "mode=0777", "mount-tmp");
    must_mkdir(NEWROOT "/dev/pts", 0755, "mkdir-devpts");
    must_mkdir(NEWROOT "/dev/shm", 0755, "mkdir-shm");
    must_mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620",
               "mount-devpts");
    must_mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL, "mount-shm");
}

int mounts_switch_root(const struct boot_options *opts) {
    runtime_minor = opts->runtime_minor;
    int upper = mount_image_root(opts);
    mount_system_dirs();
    /* Upstream's init stays outside and chroots each process into SYSROOT; ours moves the whole
     * tree to / and lives in it. A process sees the same either way: /proc/mounts shows only what
     * is reachable from its root, so the initramfs, the squashfs and the 0.4 upper tmpfs are
     * hidden, and the mounts above keep their order (MS_MOVE does not reorder them). */
    if (chdir(NEWROOT) < 0) boot_fatal("chdir-root", errno);
    must_mount(".", "/", NULL, MS_MOVE, NULL, "move-root");
    if (chroot(".") < 0) boot_fatal("chroot", errno);
    if (chdir("/") < 0) boot_fatal("chdir-root", errno);
    return upper;
}

void mounts_agent_directories(void) {
    /* DEFAULT_DIR_PERMS (0755) for every missing component, /var/tmp included: upstream does not
     * make it sticky (init.c setup_agent_directories, v0.4.2:430-440, v0.5.2:487-499). */
    int err = dirpath_create(AGENT_FDS_DIR, 0755, NULL);
    if (err) boot_fatal("agent-dirs", -err);
}

int mounts_volume(const char *tag, const char *path) {
    if (path[0] != '/') return -EINVAL;
    int dir;
    int err = dirpath_create(path, 0755, &dir);
    if (err) return err;
    /* Through the open directory, as upstream (do_mount): the path is not looked up twice. */
    char target[32];
    snprintf(target, sizeof target, "/proc/self/fd/%d", dir);
    const char *data = runtime_minor >= 5 ? "trans=virtio,version=9p2000.L,msize=" MSIZE_05
                                          : "trans=virtio,version=9p2000.L";
    err = mount(tag, target, "9p", 0, data) < 0 ? -errno : 0;
    close(dir);
    return err;
}
