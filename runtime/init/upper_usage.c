#include "upper_usage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
    uint64_t size;
    char *path;
};

struct top {
    struct entry *items;
    uint32_t len, limit;
};

static void offer(struct top *t, uint64_t size, const char *path) {
    if (t->len == t->limit && (t->len == 0 || t->items[t->len - 1].size >= size)) return;
    char *copy = strdup(path);
    if (!copy) return;
    if (t->len == t->limit) free(t->items[--t->len].path);
    uint32_t i = t->len++;
    while (i > 0 && t->items[i - 1].size < size) { t->items[i] = t->items[i - 1]; i--; }
    t->items[i].size = size;
    t->items[i].path = copy;
}

/* Disk blocks, not apparent size: a sparse file costs the tmpfs only what it really holds. */
static void walk(struct top *t, int dirfd, char *path, size_t path_len, int depth) {
    if (depth > 64) return;
    DIR *d = fdopendir(dirfd);
    if (!d) { close(dirfd); return; }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t n = strlen(e->d_name);
        if (path_len + 1 + n >= 4096) continue;
        path[path_len] = '/';
        memcpy(path + path_len + 1, e->d_name, n + 1);
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (S_ISDIR(st.st_mode)) {
            int child = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child >= 0) walk(t, child, path, path_len + 1 + n, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            offer(t, (uint64_t)st.st_blocks * 512u, path);
        }
    }
    path[path_len] = 0;
    closedir(d);
}

void upper_usage_reply(struct obuf *out, uint64_t msg_id, int upper_fd, uint32_t limit) {
    if (limit == 0 || limit > PROTO_UPPER_USAGE_MAX_FILES) limit = limit ? PROTO_UPPER_USAGE_MAX_FILES : 10;
    struct top t = {calloc(limit, sizeof(struct entry)), 0, limit};
    char *path = malloc(4096);
    int dup_fd = dup(upper_fd);
    if (!t.items || !path || dup_fd < 0) {
        if (dup_fd >= 0) close(dup_fd);
        wire_err(out, msg_id, ENOMEM);
        free(t.items);
        free(path);
        return;
    }
    lseek(dup_fd, 0, SEEK_SET);
    path[0] = 0;
    walk(&t, dup_fd, path, 0, 0);
    size_t body = 0;
    for (uint32_t i = 0; i < t.len; i++) body += 16 + strlen(t.items[i].path);
    uint8_t *buf = malloc(body ? body : 1);
    if (buf) {
        uint8_t *p = buf;
        for (uint32_t i = 0; i < t.len; i++) {
            size_t n = strlen(t.items[i].path);
            put_u64(p, t.items[i].size);
            put_u64(p + 8, n);
            memcpy(p + 16, t.items[i].path, n);
            p += 16 + n;
        }
        wire_ok_bytes(out, msg_id, buf, body);
    } else {
        wire_err(out, msg_id, ENOMEM);
    }
    for (uint32_t i = 0; i < t.len; i++) free(t.items[i].path);
    free(t.items);
    free(path);
    free(buf);
}
