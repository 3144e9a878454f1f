#include "processes.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot.h"
#include "dirpath.h"
#include "process_tree.h"
#include "splice_out.h"
#include "spawn.h"

#define READ_CHUNK PROTO_MAX_OUTPUT_CHUNK

/* What one of a process's fds 0-2 is connected to. */
enum output_kind {
    OUT_FILE,      /* a file (the host's FILE redirect, or upstream's default under AGENT_FDS_DIR) */
    OUT_PULL,      /* a pipe read into a buffer the host drains with QUERY_OUTPUT (upstream) */
    OUT_PUSH,      /* extension: a pipe whose bytes are sent as they come */
    OUT_STDIN,     /* fd 0 as a pipe (extension: fed by PUT_INPUT) */
};

struct output {
    enum output_kind kind;
    int fd;          /* our end of the pipe, -1 when closed or not a pipe */
    int watching;    /* registered with epoll */
    int pipe;        /* OUT_PUSH from a pipe (not a terminal): its payloads can be spliced */
    uint8_t *buf;    /* OUT_PULL: bytes not yet queried */
    size_t len, cap;
    char *path;      /* OUT_FILE: what QUERY_OUTPUT reads */
};

struct process {
    uint64_t id;
    pid_t pid;
    int running;
    int entrypoint;
    int tty;              /* a pseudo-terminal (extension); out[1].fd is its master */
    struct output out[3];
    int stdin_eof;        /* close the stdin pipe once the queue drains */
    struct obuf stdin_queue;
};

static int epoll_fd = -1;
static struct obuf *outgoing;
static struct splice_out *spliced;
static int runtime_minor = 4;
static struct process **table;
static size_t table_len, table_cap;
static uint64_t last_id;
static int have_entrypoint;

void processes_init(int epfd, struct obuf *out, struct splice_out *splice, int minor) {
    epoll_fd = epfd;
    outgoing = out;
    spliced = splice;
    runtime_minor = minor;
}

static struct process *find(uint64_t id) {
    for (size_t i = 0; i < table_len; i++)
        if (table[i]->id == id) return table[i];
    return NULL;
}

static void watch(struct process *p, unsigned slot, uint32_t events, int on) {
    struct output *o = &p->out[slot];
    if (o->watching == on || o->fd < 0) return;
    struct epoll_event ev = {.events = events, .data.u64 = (p->id << 2) | slot};
    if (epoll_ctl(epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, o->fd, &ev) == 0) o->watching = on;
}

/* A payload in flight from this pipe is read out before the pipe is read or closed. */
static void take_back_splice(struct output *o) {
    if (splice_out_from(spliced, o->fd) && splice_out_materialize(spliced, outgoing) < 0)
        boot_fatal("alloc-output", ENOMEM);
}

static void close_pipe(struct process *p, unsigned slot) {
    struct output *o = &p->out[slot];
    if (o->fd < 0) return;
    take_back_splice(o);
    watch(p, slot, 0, 0);
    close(o->fd);
    o->fd = -1;
}

static void free_process(struct process *p) {
    for (size_t i = 0; i < table_len; i++) {
        if (table[i] != p) continue;
        table[i] = table[--table_len];
        break;
    }
    for (unsigned slot = 0; slot < 3; slot++) {
        close_pipe(p, slot);
        free(p->out[slot].buf);
        free(p->out[slot].path);
    }
    free(p->stdin_queue.data);
    free(p);
}

/* Upstream's redir_buffers_empty: pull buffers empty and file-backed fds still empty files. */
static int buffers_empty(const struct process *p) {
    for (unsigned slot = 0; slot < 3; slot++) {
        const struct output *o = &p->out[slot];
        if (o->kind == OUT_PULL && o->len) return 0;
        if (o->kind == OUT_FILE && o->path) {
            struct stat st;
            if (stat(o->path, &st) == 0 && st.st_size) return 0;
        }
    }
    return 1;
}

/* ---- spawning ---- */

static char *span_strdup(struct span s) {
    if (memchr(s.data, 0, s.len)) return NULL;
    char *r = malloc(s.len + 1);
    if (!r) return NULL;
    memcpy(r, s.data, s.len);
    r[s.len] = 0;
    return r;
}

static void free_strv(char **v) {
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

static char **array_strv(struct span_array arr) {
    char **v = calloc(arr.count + 1, sizeof *v);
    if (!v) return NULL;
    for (uint64_t i = 0; i < arr.count; i++) {
        if (!(v[i] = span_strdup(wire_array_entry(arr, i)))) { free_strv(v); return NULL; }
    }
    return v;
}

/* Our side of fd `slot` for a new process; the child's side goes to child[slot]. */
static int plumb(const struct request *req, int extensions, struct process *p, unsigned slot,
                 struct child_stdio *child) {
    const struct redirect *r = &req->redirect[slot];
    struct output *o = &p->out[slot];
    o->fd = -1;
    child->fd[slot] = -1;
    child->path[slot] = NULL;
    if (!r->present || r->kind == REDIRECT_FILE) {
        o->kind = OUT_FILE;
        if (r->present) {
            if (!(o->path = span_strdup(r->path))) return -EINVAL;
        } else {
            /* upstream: a file per fd in the image, created empty before the fork */
            if (asprintf(&o->path, AGENT_FDS_DIR "/%" PRIu64 "/%u", p->id, slot) < 0) return -ENOMEM;
            int fd = open(o->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0700);
            if (fd < 0) return -errno;
            close(fd);
        }
        child->path[slot] = o->path;
        return 0;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) return -errno;
    int ours = slot == 0 ? pipefd[1] : pipefd[0];
    child->fd[slot] = slot == 0 ? pipefd[0] : pipefd[1];
    fcntl(ours, F_SETFL, O_NONBLOCK);
    o->fd = ours;
    if (slot == 0) {
        o->kind = OUT_STDIN;
    } else if (r->kind == REDIRECT_PIPE_PUSH && extensions) {
        o->kind = OUT_PUSH;
        o->pipe = 1;
    } else {
        o->kind = OUT_PULL;
        o->cap = (size_t)r->size;
        if (!(o->buf = malloc(o->cap))) return -ENOMEM;
    }
    return 0;
}

/* A pseudo-terminal (extension): the slave is the process's stdin/stdout/stderr and controlling
 * terminal; the master is read for output (pushed as fd 1) and written with PUT_INPUT. */
static int plumb_pty(const struct request *req, struct process *p, struct child_stdio *child) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return -errno;
    struct winsize ws = {.ws_row = (unsigned short)req->rows, .ws_col = (unsigned short)req->cols};
    char *name;
    if (grantpt(master) < 0 || unlockpt(master) < 0 || !(name = ptsname(master))) {
        int err = -errno;
        close(master);
        return err;
    }
    ioctl(master, TIOCSWINSZ, &ws);
    int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        int err = -errno;
        close(master);
        return err;
    }
    for (unsigned slot = 0; slot < 3; slot++) {
        child->fd[slot] = slot == 0 ? slave : fcntl(slave, F_DUPFD_CLOEXEC, 3);
        child->path[slot] = NULL;
    }
    fcntl(master, F_SETFL, O_NONBLOCK);
    p->out[0].kind = OUT_STDIN;
    p->out[0].fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
    p->out[1].kind = OUT_PUSH;
    p->out[1].fd = master;
    p->out[2].kind = OUT_PUSH;
    p->out[2].fd = -1;
    p->tty = 1;
    return (child->fd[1] < 0 || child->fd[2] < 0 || p->out[0].fd < 0) ? -EMFILE : 0;
}

static int table_add(struct process *p) {
    if (table_len == table_cap) {
        size_t cap = table_cap ? table_cap * 2 : 16;
        struct process **t = realloc(table, cap * sizeof *t);
        if (!t) return -ENOMEM;
        table = t;
        table_cap = cap;
    }
    table[table_len++] = p;
    return 0;
}

int64_t processes_spawn(const struct request *req, int extensions, struct spawn_outcome *outcome) {
    char *bin = NULL, *cwd = NULL;
    char **argv = NULL, **envp = NULL;
    struct child_stdio child = {{-1, -1, -1}, {NULL, NULL, NULL}};
    int64_t result;
    memset(outcome, 0, sizeof *outcome);
    /* upstream: BIN and ARG are required (EFAULT); a second entrypoint is a caller bug (EEXIST) */
    if (!req->has_bin || !req->has_argv) return -EFAULT;
    if (req->entrypoint && have_entrypoint) return -EEXIST;
    struct process *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    for (unsigned slot = 0; slot < 3; slot++) p->out[slot].fd = -1;
    /* The id is taken before anything can fail: a failed spawn uses one up, as upstream. */
    p->id = ++last_id;

    if (!(bin = span_strdup(req->bin)) || !(argv = array_strv(req->argv))) { result = -EINVAL; goto out; }
    if (req->has_env && !(envp = array_strv(req->env))) { result = -EINVAL; goto out; }
    if (req->cwd.len && !(cwd = span_strdup(req->cwd))) { result = -EINVAL; goto out; }
    char dir[64];
    snprintf(dir, sizeof dir, AGENT_FDS_DIR "/%" PRIu64, p->id);
    /* upstream create_process_fds_dir: mode 0700, no link followed in the image */
    int err = dirpath_create(dir, 0700, NULL);
    if (err) { result = err; goto out; }
    if (req->pty && extensions) err = plumb_pty(req, p, &child);
    else for (unsigned slot = 0; slot < 3 && !err; slot++) err = plumb(req, extensions, p, slot, &child);
    if (err) { result = err; goto out; }

    struct spawn_request sr = {
        .bin = bin, .argv = argv, .cwd = cwd,
        /* Runtime 0.4 gives the process the ENV it was sent (or init's own environment without
         * one). 0.5 passes `envp ? NULL : environ` to execve: an empty environment whenever the
         * host sends ENV, which a provider always does (ya-runtime-vm PR #201). */
        .envp = envp ? (runtime_minor >= 5 ? NULL : envp) : SPAWN_INIT_ENVIRONMENT,
        .uid = req->has_uid ? req->uid : 0,
        .gid = req->has_gid ? req->gid : 0,
        .tty = p->tty,
    };
    struct spawn_result spawned;
    err = spawn_process(&sr, &child, &spawned);
    if (err) { result = err; goto out; }
    p->pid = spawned.pid;
    p->running = 1;
    p->entrypoint = req->entrypoint;
    outcome->exec_step = spawned.failed_step;
    outcome->exec_errno = spawned.failed_errno;
    if ((err = table_add(p))) {
        kill(p->pid, SIGKILL);
        result = err;
        goto out;
    }
    if (p->entrypoint) have_entrypoint = 1;
    for (unsigned slot = 1; slot <= 2; slot++)
        if (p->out[slot].kind != OUT_FILE) watch(p, slot, EPOLLIN, 1);
    result = (int64_t)p->id;
    p = NULL;
out:
    for (unsigned slot = 0; slot < 3; slot++)
        if (child.fd[slot] >= 0) close(child.fd[slot]);
    if (p) {
        for (unsigned slot = 0; slot < 3; slot++) {
            close_pipe(p, slot);
            free(p->out[slot].buf);
            free(p->out[slot].path);
        }
        free(p);
    }
    free(bin);
    free(cwd);
    free_strv(argv);
    free_strv(envp);
    return result;
}

/* ---- output ---- */

/* Reads what the pipe holds now. Returns 0 at EOF or error, 1 when more may come. */
static int read_output(struct process *p, unsigned slot, int drain) {
    struct output *o = &p->out[slot];
    if (o->pipe) {
        /* Not copied at all while the agent keeps up: spliced to the port (splice_out.h). At
         * death everything is drained by reading, behind a payload still in flight. */
        if (drain) take_back_splice(o);
        else if (splice_out_from(spliced, o->fd)) return 1;
        else {
            int r = splice_out_queue(spliced, outgoing, o->fd, p->id, slot);
            if (r < 0) return 0;
            if (r > 0) return 1;
        }
    }
    for (;;) {
        /* Read where the bytes are kept: straight into the outgoing message (push) or the
         * process's buffer (pull), never through a chunk on the stack (a copy per byte the
         * emulated CPU pays for). */
        uint8_t *dst;
        size_t want = READ_CHUNK;
        if (o->kind == OUT_PUSH) {
            dst = wire_output_data_space(outgoing, want);
            if (!dst) return 0;
        } else {
            /* upstream reads only what fits; a full buffer holds the writer back */
            want = o->cap - o->len;
            if (want == 0) return 1;
            if (want > READ_CHUNK) want = READ_CHUNK;
            dst = o->buf + o->len;
        }
        ssize_t n = read(o->fd, dst, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 1;
        if (n <= 0) return 0;
        if (o->kind == OUT_PUSH) {
            wire_output_data_commit(outgoing, p->id, slot, (uint64_t)n);
            /* One chunk per turn, so one chatty process can't starve the others or the host's
             * requests; at death everything is drained. */
            if (!drain) return 1;
            continue;
        }
        int was_empty = o->len == 0;
        o->len += (size_t)n;
        if (was_empty) wire_output_available(outgoing, p->id, slot);
        return 1; /* upstream reads once per wake-up */
    }
}

static void flush_stdin(struct process *p) {
    struct output *in = &p->out[0];
    while (obuf_pending(&p->stdin_queue)) {
        ssize_t n = write(in->fd, p->stdin_queue.data + p->stdin_queue.head, obuf_pending(&p->stdin_queue));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            watch(p, 0, EPOLLOUT, 1);
            return;
        }
        if (n < 0) { /* EPIPE: the reader is gone; drop what is queued */
            p->stdin_queue.head = p->stdin_queue.len = 0;
            close_pipe(p, 0);
            return;
        }
        obuf_consume(&p->stdin_queue, (size_t)n);
    }
    watch(p, 0, EPOLLOUT, 0);
    if (p->stdin_eof) close_pipe(p, 0);
}

void processes_on_event(uint64_t tag, uint32_t events) {
    struct process *p = find(TAG_PROCESS(tag));
    unsigned slot = TAG_SLOT(tag);
    if (!p) return;
    if (slot == 0) {
        if (p->out[0].fd >= 0) flush_stdin(p);
        return;
    }
    if (p->out[slot].fd < 0) return;
    if (!read_output(p, slot, 0) || ((events & EPOLLHUP) && !(events & EPOLLIN))) close_pipe(p, slot);
}

int processes_put_input(uint64_t id, const uint8_t *data, uint64_t len, int eof) {
    struct process *p = find(id);
    if (!p || !p->running) return -ESRCH;
    if (p->out[0].kind != OUT_STDIN || p->out[0].fd < 0) return -EBADF;
    if (len) {
        if (obuf_reserve(&p->stdin_queue, len) < 0) return -ENOMEM;
        memcpy(p->stdin_queue.data + p->stdin_queue.len, data, len);
        p->stdin_queue.len += len;
    }
    if (eof) p->stdin_eof = 1;
    flush_stdin(p);
    return 0;
}

/* A file-backed fd: `len` bytes from `offset` (ENXIO at or past the end, as upstream). */
static void query_file(uint64_t msg_id, const char *path, uint64_t offset, uint64_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) { wire_err(outgoing, msg_id, (uint32_t)errno); return; }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0) { wire_err(outgoing, msg_id, (uint32_t)errno); close(fd); return; }
    if (offset >= (uint64_t)size) { wire_err(outgoing, msg_id, ENXIO); close(fd); return; }
    uint64_t n = (uint64_t)size - offset;
    if (n > len) n = len;
    if (n > PROTO_MAX_BYTES) n = PROTO_MAX_BYTES;
    uint8_t *buf = malloc(n ? n : 1);
    ssize_t got = buf ? pread(fd, buf, n, (off_t)offset) : -1;
    if (got < 0) wire_err(outgoing, msg_id, buf ? (uint32_t)errno : ENOMEM);
    else wire_ok_bytes(outgoing, msg_id, buf, (uint64_t)got);
    free(buf);
    close(fd);
}

void processes_query_output(const struct request *req) {
    /* upstream: the fd defaults to 1; id 0, len 0 and an fd other than 1 or 2 are EINVAL */
    uint8_t fd = req->has_fd ? req->fd : 1;
    if (!req->process_id || !req->length || fd == 0 || fd > 2) {
        wire_err(outgoing, req->id, EINVAL);
        return;
    }
    struct process *p = find(req->process_id);
    if (!p) { wire_err(outgoing, req->id, ESRCH); return; }
    struct output *o = &p->out[fd];
    switch (o->kind) {
    case OUT_FILE:
        query_file(req->id, o->path, req->offset, req->length);
        break;
    case OUT_PULL: {
        if (req->offset) { wire_err(outgoing, req->id, EINVAL); return; }
        int was_full = o->len == o->cap;
        size_t n = o->len < req->length ? o->len : (size_t)req->length;
        wire_ok_bytes(outgoing, req->id, o->buf, n);
        memmove(o->buf, o->buf + n, o->len - n);
        o->len -= n;
        if (was_full && o->fd >= 0) watch(p, fd, EPOLLIN, 1);
        break;
    }
    default: /* push output and stdin pipes are not queried */
        wire_err(outgoing, req->id, EINVAL);
        return;
    }
    /* upstream: the query that leaves a dead process with nothing buffered deletes it, and what
     * its pipes still held is dropped with it */
    if (!p->running && buffers_empty(p)) free_process(p);
}

void processes_update_interest(int congested) {
    for (size_t i = 0; i < table_len; i++) {
        struct process *p = table[i];
        for (unsigned slot = 1; slot <= 2; slot++) {
            struct output *o = &p->out[slot];
            if (o->fd < 0) continue;
            int want = o->kind == OUT_PUSH ? !congested : o->kind == OUT_PULL ? o->len < o->cap : 0;
            watch(p, slot, EPOLLIN, want);
        }
    }
}

int processes_reap(void) {
    int status, entrypoint_died = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct process *p = NULL;
        for (size_t i = 0; i < table_len; i++)
            if (table[i]->pid == pid && table[i]->running) p = table[i];
        if (!p) continue; /* an orphan reparented to init */
        p->running = 0;
        /* Push output (extension) is complete before its PROCESS_DIED; pull buffers are left as
         * upstream leaves them: what is read later still fits, the rest goes with the process. */
        for (unsigned slot = 1; slot <= 2; slot++) {
            if (p->out[slot].kind != OUT_PUSH || p->out[slot].fd < 0) continue;
            read_output(p, slot, 1);
            close_pipe(p, slot);
        }
        close_pipe(p, 0);
        uint8_t code, kind;
        if (WIFEXITED(status)) { code = (uint8_t)WEXITSTATUS(status); kind = EXIT_EXITED; }
        else {
            code = (uint8_t)WTERMSIG(status);
            kind = WCOREDUMP(status) ? EXIT_DUMPED : EXIT_KILLED;
        }
        wire_process_died(outgoing, p->id, code, kind);
        if (p->entrypoint) entrypoint_died = 1;
        else if (buffers_empty(p)) free_process(p);
    }
    return entrypoint_died;
}

int processes_kill(uint64_t id) {
    struct process *p = id ? find(id) : NULL;
    if (!p) return -EINVAL;
    if (!p->running) return -ESRCH;
    return kill(p->pid, SIGKILL) < 0 ? -errno : 0;
}

int processes_signal_tree(uint64_t id, int signo) {
    struct process *p = find(id);
    if (!p || !p->running) return -ESRCH;
    if (signo <= 0 || signo >= NSIG) return -EINVAL;
    /* A terminal's process leads its own session: its group is what a Ctrl-C reaches. */
    if (p->tty && signo != SIGKILL) return kill(-p->pid, signo) < 0 ? -errno : 0;
    return process_tree_signal(p->pid, signo);
}

uint64_t processes_running(void) {
    uint64_t n = 0;
    for (size_t i = 0; i < table_len; i++) n += table[i]->running != 0;
    return n;
}

void processes_kill_all(void) {
    kill(-1, SIGKILL); /* everything but init, as upstream does when its entrypoint exits */
}

int processes_resize(uint64_t id, uint32_t rows, uint32_t cols) {
    struct process *p = find(id);
    if (!p || !p->running) return -ESRCH;
    if (!p->tty || p->out[1].fd < 0) return -ENOTTY;
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    return ioctl(p->out[1].fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}
