#include "process_tree.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TREE 4096

/* The parent of pid from /proc/<pid>/stat (field 4, after the command in parentheses). */
static pid_t parent_of(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *close_paren = strrchr(buf, ')');
    if (!close_paren) return -1;
    char state;
    int ppid;
    if (sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2) return -1;
    return (pid_t)ppid;
}

/* Collects root's descendants (not root) into out; returns how many. */
static size_t descendants(pid_t root, pid_t *out, size_t cap) {
    pid_t pids[MAX_TREE], parents[MAX_TREE];
    size_t all = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && all < MAX_TREE) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1) continue;
        pid_t ppid = parent_of((pid_t)pid);
        if (ppid < 0) continue;
        pids[all] = (pid_t)pid;
        parents[all++] = ppid;
    }
    if (d) closedir(d);
    size_t found = 0;
    /* Breadth-first over the parent links: the set grows until no new child is found. */
    for (int grew = 1; grew;) {
        grew = 0;
        for (size_t i = 0; i < all && found < cap; i++) {
            if (pids[i] == 0) continue;
            int child = parents[i] == root;
            for (size_t k = 0; !child && k < found; k++) child = parents[i] == out[k];
            if (!child) continue;
            out[found++] = pids[i];
            pids[i] = 0;
            grew = 1;
        }
    }
    return found;
}

int process_tree_signal(pid_t root, int signo) {
    pid_t tree[MAX_TREE];
    if (signo == SIGKILL) {
        /* Freeze first: a stopped process cannot fork. Once a pass finds no member the previous
         * pass had not already stopped, the whole tree is still. */
        kill(root, SIGSTOP);
        size_t previous = (size_t)-1;
        for (int pass = 0; pass < 32; pass++) {
            size_t n = descendants(root, tree, MAX_TREE);
            for (size_t i = 0; i < n; i++) kill(tree[i], SIGSTOP);
            if (n == previous) break;
            previous = n;
        }
    }
    size_t n = descendants(root, tree, MAX_TREE);
    int err = kill(root, signo) < 0 ? -errno : 0;
    for (size_t i = 0; i < n; i++) kill(tree[i], signo);
    return err;
}
