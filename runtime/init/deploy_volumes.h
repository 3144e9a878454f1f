/* Volumes a requestor adds at deploy under ya-runtime-vm 0.5 (reference §9): `ram` (a tmpfs of a
 * given size) and `storage` (a virtio-blk disk the guest formats as ext2), named on the kernel
 * command line as upstream's host names them (vmrt.rs:136-168): `vol-N-path=`, `vol-N-size=` (ram,
 * bytes) and `vol-N-errors=` (storage). Upstream's init: init.c:2481-2625, 2721-2825 (v0.5.2).
 * `host` volumes are 9p exports mounted by MOUNT_VOLUME like the image's; they are not here. */
#ifndef GVMI_DEPLOY_VOLUMES_H
#define GVMI_DEPLOY_VOLUMES_H

#include <stddef.h>
#include <stdint.h>

/* Reads the `vol-N-*` tokens of the kernel command line (others are ignored). */
void deploy_volumes_parse(const char *cmdline);

/* Formats every storage disk (a virtio-blk whose serial is `vol-N`) with the initramfs's mke2fs,
 * as upstream runs its mkfs.ext2 at boot; a disk whose `vol-N-path` or `vol-N-errors` is missing
 * stops the boot, as upstream's CHECK does (GVMI-INIT-FATAL deploy-volume). */
void deploy_volumes_prepare(void);

/* The deploy volume at `/`, if any: mounted at `dir` (the overlay's writable-layer directory) in
 * place of the overlay's own tmpfs. Returns 1 when one was mounted, 0 when there is none. */
int deploy_volumes_mount_root(const char *dir);

/* Every other deploy volume, over its path in the image root `root_fd` (its missing directories
 * made with `dir_mode`, as upstream's create_dir_path with the upper's mode): storage first, then
 * ram, each in index order. Fatal on failure (deploy-volume). */
void deploy_volumes_mount(int root_fd, unsigned dir_mode);

/* For STATS: appends, per mounted deploy volume other than `/`, u64 kind (1 ram, 2 storage) |
 * u64 total bytes | u64 used bytes | u64 flags (bit 0: read-only now, e.g. after errors=remount-ro)
 * | u64 path length | path. Returns the bytes written into `buf` (at most `cap`). */
size_t deploy_volumes_stats(uint8_t *buf, size_t cap);

#endif
