#include "processes.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define READ_CHUNK PROTO_MAX_OUTPUT_CHUNK

struct output {
    int fd;          /* read end of the pipe, -1 when closed or not a pipe */
    uint8_t kind;    /* enum redirect_kind */
    int watching;    /* registered for EPOLLIN */
    uint8_t *buf;    /* pull modes: bytes not yet queried */
    size_t len, cap;
};

struct process {
    uint64_t id;
    pid_t pid;
    int running;
    struct output out[3]; /* [1] stdout, [2] stderr */
    int stdin_fd;         /* write end of the stdin pipe, -1 when none */
    int stdin_watching;
    int stdin_eof;        /* close after the queue drains */
    int tty;              /* stdin/stdout are a pseudo-terminal (out[1].fd is its master) */
    struct obuf stdin_queue;
};

static int epoll_fd = -1;
static struct obuf *outgoing;
static struct process **table;
static size_t table_len, table_cap;
static uint64_t next_id = 1;

void processes_init(int epfd, struct obuf *out) {
    epoll_fd = epfd;
    outgoing = out;
}

static struct process *find(uint64_t id) {
    for (size_t i = 0; i < table_len; i++)
        if (table[i]->id == id) return table[i];
    return NULL;
}

static void watch(struct process *p, unsigned slot, int fd, uint32_t events, int *flag, int on) {
    if (*flag == on || fd < 0) return;
    struct epoll_event ev = {.events = events, .data.u64 = (p->id << 2) | slot};
    if (epoll_ctl(epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) == 0) *flag = on;
}

static void close_output(struct process *p, unsigned slot) {
    struct output *o = &p->out[slot];
    if (o->fd < 0) return;
    watch(p, slot, o->fd, EPOLLIN, &o->watching, 0);
    close(o->fd);
    o->fd = -1;
}

static void close_stdin(struct process *p) {
    if (p->stdin_fd < 0) return;
    watch(p, 0, p->stdin_fd, EPOLLOUT, &p->stdin_watching, 0);
    close(p->stdin_fd);
    p->stdin_fd = -1;
}

static void free_process(struct process *p) {
    for (size_t i = 0; i < table_len; i++) {
        if (table[i] != p) continue;
        table[i] = table[--table_len];
        break;
    }
    close_output(p, 1);
    close_output(p, 2);
    close_stdin(p);
    free(p->out[1].buf);
    free(p->out[2].buf);
    free(p->stdin_queue.data);
    free(p);
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

/* The program to execve: as given when it holds a '/', else the first executable on PATH. */
static int resolve_program(const char *bin, char *const *envp, char *out, size_t cap) {
    if (strchr(bin, '/')) {
        if (strlen(bin) >= cap) return -ENAMETOOLONG;
        strcpy(out, bin);
        return 0;
    }
    const char *path = DEFAULT_PATH;
    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, "PATH=", 5)) path = *e + 5;
    int err = -ENOENT;
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n + 1 + strlen(bin) < cap) {
            memcpy(out, path, n);
            out[n] = '/';
            strcpy(out + n + 1, bin);
            if (access(out, X_OK) == 0) return 0;
            if (errno == EACCES) err = -EACCES;
        }
        path += n;
        if (*path == ':') path++;
    }
    return err;
}

/* In the child: never returns. Reports a failure's errno on report_fd (close-on-exec). */
static void child_exec(const struct request *req, const char *program, char **argv, char **envp,
                       const char *cwd, int stdio[3], int report_fd) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    setsid();
    for (int fd = 0; fd < 3; fd++) {
        if (dup2(stdio[fd], fd) < 0) goto fail;
    }
    if (req->pty && ioctl(0, TIOCSCTTY, 0) < 0) goto fail;
    if (cwd && chdir(cwd) < 0) goto fail;
    if (req->has_gid && setgid(req->gid) < 0) goto fail;
    if (req->has_uid && setuid(req->uid) < 0) goto fail;
    execve(program, argv, envp);
fail:;
    int err = errno;
    if (write(report_fd, &err, sizeof err) < 0) { /* the parent sees EOF and a 127 exit */ }
    _exit(127);
}

/* A pseudo-terminal: the slave is the process's stdin/stdout/stderr and controlling terminal;
 * the master is read for output (pushed as fd 1) and written with PUT_INPUT. */
static int open_pty(const struct request *req, struct process *p, int stdio[3], int parent_end[3]) {
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
    stdio[0] = slave;
    stdio[1] = fcntl(slave, F_DUPFD_CLOEXEC, 3);
    stdio[2] = fcntl(slave, F_DUPFD_CLOEXEC, 3);
    parent_end[0] = fcntl(master, F_DUPFD_CLOEXEC, 3);
    parent_end[1] = master;
    fcntl(master, F_SETFL, O_NONBLOCK);
    fcntl(parent_end[0], F_SETFL, O_NONBLOCK);
    p->out[1].kind = REDIRECT_PIPE_PUSH;
    p->out[2].fd = -1;
    p->tty = 1;
    return (stdio[1] < 0 || stdio[2] < 0 || parent_end[0] < 0) ? -EMFILE : 0;
}

static int open_stdio(const struct request *req, struct process *p, int stdio[3], int parent_end[3]) {
    if (req->pty) return open_pty(req, p, stdio, parent_end);
    for (int fd = 0; fd < 3; fd++) {
        const struct redirect *r = &req->redirect[fd];
        stdio[fd] = parent_end[fd] = -1;
        p->out[fd].fd = -1;
        if (r->present && r->kind == REDIRECT_FILE) {
            char *path = span_strdup(r->path);
            if (!path) return -EINVAL;
            int flags = fd == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC;
            stdio[fd] = open(path, flags | O_CLOEXEC, 0644);
            free(path);
            if (stdio[fd] < 0) return -errno;
        } else if (fd == 0 && !r->present) {
            if ((stdio[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) return -errno;
        } else {
            int pipefd[2];
            if (pipe2(pipefd, O_CLOEXEC) < 0) return -errno;
            int ours = fd == 0 ? pipefd[1] : pipefd[0];
            stdio[fd] = fd == 0 ? pipefd[0] : pipefd[1];
            parent_end[fd] = ours;
            fcntl(ours, F_SETFL, O_NONBLOCK);
            /* A bigger pipe: fewer wake-ups between the writer and the agent under emulation. */
            if (fd > 0) fcntl(ours, F_SETPIPE_SZ, 1 << 20);
            if (fd > 0) {
                p->out[fd].kind = r->present ? r->kind : REDIRECT_PIPE_PUSH;
                if (p->out[fd].kind != REDIRECT_PIPE_PUSH) {
                    p->out[fd].cap = (size_t)r->size;
                    if (!(p->out[fd].buf = malloc(p->out[fd].cap))) return -ENOMEM;
                }
            }
        }
    }
    return 0;
}

int64_t processes_spawn(const struct request *req) {
    char program[4096];
    char *cwd = NULL, *bin = NULL;
    char **argv = NULL, **envp = NULL;
    int stdio[3] = {-1, -1, -1}, parent_end[3] = {-1, -1, -1}, report[2] = {-1, -1};
    int64_t result;
    struct process *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->stdin_fd = -1;

    if (!req->bin.len || !(bin = span_strdup(req->bin))) { result = -EINVAL; goto out; }
    if (req->has_argv && req->argv.count > 0) {
        if (!(argv = array_strv(req->argv))) { result = -EINVAL; goto out; }
    } else {
        argv = calloc(2, sizeof *argv);
        if (!argv || !(argv[0] = strdup(bin))) { result = -ENOMEM; goto out; }
    }
    if (!(envp = req->has_env ? array_strv(req->env) : calloc(1, sizeof *envp))) {
        result = -EINVAL;
        goto out;
    }
    if (req->cwd.len && !(cwd = span_strdup(req->cwd))) { result = -EINVAL; goto out; }
    int err = resolve_program(bin, envp, program, sizeof program);
    if (err) { result = err; goto out; }
    if ((err = open_stdio(req, p, stdio, parent_end))) { result = err; goto out; }
    if (pipe2(report, O_CLOEXEC) < 0) { result = -errno; goto out; }

    pid_t pid = fork();
    if (pid < 0) { result = -errno; goto out; }
    if (pid == 0) child_exec(req, program, argv, envp, cwd, stdio, report[1]);

    close(report[1]);
    report[1] = -1;
    int child_err = 0;
    ssize_t n;
    do n = read(report[0], &child_err, sizeof child_err); while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof child_err) {
        waitpid(pid, NULL, 0); /* it exits at once with 127 */
        result = -child_err;
        goto out;
    }

    p->id = next_id++;
    p->pid = pid;
    p->running = 1;
    p->stdin_fd = parent_end[0];
    p->out[1].fd = parent_end[1];
    p->out[2].fd = parent_end[2];
    parent_end[0] = parent_end[1] = parent_end[2] = -1;
    if (table_len == table_cap) {
        size_t cap = table_cap ? table_cap * 2 : 16;
        struct process **t = realloc(table, cap * sizeof *t);
        if (!t) { kill(-pid, SIGKILL); result = -ENOMEM; goto out; }
        table = t;
        table_cap = cap;
    }
    table[table_len++] = p;
    for (unsigned slot = 1; slot <= 2; slot++)
        watch(p, slot, p->out[slot].fd, EPOLLIN, &p->out[slot].watching, 1);
    result = (int64_t)p->id;
    p = NULL;
out:
    for (int i = 0; i < 3; i++) {
        if (stdio[i] >= 0) close(stdio[i]);
        if (parent_end[i] >= 0) close(parent_end[i]);
    }
    if (report[0] >= 0) close(report[0]);
    if (report[1] >= 0) close(report[1]);
    if (p) {
        free(p->out[1].buf);
        free(p->out[2].buf);
        free(p);
    }
    free(bin);
    free(cwd);
    free_strv(argv);
    free_strv(envp);
    return result;
}

/* ---- output ---- */

/* Reads what the pipe holds now; returns 0 at EOF or error, 1 when more may come. */
static int read_output(struct process *p, unsigned slot, int drain) {
    struct output *o = &p->out[slot];
    uint8_t chunk[READ_CHUNK];
    for (;;) {
        size_t want = sizeof chunk;
        if (o->kind == REDIRECT_PIPE_BLOCKING) {
            want = o->cap - o->len;
            if (want == 0) return 1; /* full: back-pressure until QUERY_OUTPUT */
            if (want > sizeof chunk) want = sizeof chunk;
        }
        ssize_t n = read(o->fd, chunk, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 1;
        if (n <= 0) return 0;
        if (o->kind == REDIRECT_PIPE_PUSH) {
            if (wire_output_data(outgoing, p->id, slot, chunk, (uint64_t)n) < 0) return 0;
        } else {
            int was_empty = o->len == 0;
            size_t keep = (size_t)n;
            if (keep > o->cap) keep = o->cap; /* cyclic: only the newest bytes fit */
            if (o->len + keep > o->cap) {
                size_t drop = o->len + keep - o->cap;
                memmove(o->buf, o->buf + drop, o->len - drop);
                o->len -= drop;
            }
            memcpy(o->buf + o->len, chunk + (size_t)n - keep, keep);
            o->len += keep;
            if (was_empty) wire_output_available(outgoing, p->id, slot);
        }
        /* Push mode returns to the loop after a chunk so one chatty process can't starve the
         * others or the host's requests; at death everything is drained. */
        if (!drain && o->kind == REDIRECT_PIPE_PUSH) return 1;
    }
}

static void flush_stdin(struct process *p) {
    while (obuf_pending(&p->stdin_queue)) {
        ssize_t n = write(p->stdin_fd, p->stdin_queue.data + p->stdin_queue.head,
                          obuf_pending(&p->stdin_queue));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            watch(p, 0, p->stdin_fd, EPOLLOUT, &p->stdin_watching, 1);
            return;
        }
        if (n < 0) { /* EPIPE: the reader is gone; drop what is queued */
            p->stdin_queue.head = p->stdin_queue.len = 0;
            close_stdin(p);
            return;
        }
        obuf_consume(&p->stdin_queue, (size_t)n);
    }
    watch(p, 0, p->stdin_fd, EPOLLOUT, &p->stdin_watching, 0);
    if (p->stdin_eof) close_stdin(p);
}

void processes_on_event(uint64_t tag, uint32_t events) {
    struct process *p = find(TAG_PROCESS(tag));
    unsigned slot = TAG_SLOT(tag);
    if (!p) return;
    if (slot == 0) {
        if (p->stdin_fd >= 0) flush_stdin(p);
        return;
    }
    if (p->out[slot].fd < 0) return;
    if (!read_output(p, slot, 0) || ((events & EPOLLHUP) && !(events & EPOLLIN)))
        close_output(p, slot);
}

int processes_put_input(uint64_t id, const uint8_t *data, uint64_t len, int eof) {
    struct process *p = find(id);
    if (!p || !p->running) return -ESRCH;
    if (p->stdin_fd < 0) return -EBADF;
    if (len) {
        if (obuf_reserve(&p->stdin_queue, len) < 0) return -ENOMEM;
        memcpy(p->stdin_queue.data + p->stdin_queue.len, data, len);
        p->stdin_queue.len += len;
    }
    if (eof) p->stdin_eof = 1;
    flush_stdin(p);
    return 0;
}

void processes_query_output(uint64_t msg_id, uint64_t id, uint8_t fd, uint64_t len) {
    struct process *p = find(id);
    if (!p) { wire_err(outgoing, msg_id, ESRCH); return; }
    if (fd != 1 && fd != 2) { wire_err(outgoing, msg_id, EINVAL); return; }
    struct output *o = &p->out[fd];
    if (!o->buf) { wire_err(outgoing, msg_id, EBADF); return; }
    size_t n = o->len < len ? o->len : (size_t)len;
    wire_ok_bytes(outgoing, msg_id, o->buf, n);
    memmove(o->buf, o->buf + n, o->len - n);
    o->len -= n;
    if (!p->running && !p->out[1].len && !p->out[2].len) free_process(p);
}

void processes_update_interest(int congested) {
    for (size_t i = 0; i < table_len; i++) {
        struct process *p = table[i];
        for (unsigned slot = 1; slot <= 2; slot++) {
            struct output *o = &p->out[slot];
            if (o->fd < 0) continue;
            int want = o->kind == REDIRECT_PIPE_PUSH ? !congested
                     : o->kind == REDIRECT_PIPE_BLOCKING ? o->len < o->cap : 1;
            watch(p, slot, o->fd, EPOLLIN, &o->watching, want);
        }
    }
}

void processes_reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct process *p = NULL;
        for (size_t i = 0; i < table_len; i++)
            if (table[i]->pid == pid && table[i]->running) p = table[i];
        if (!p) continue; /* an orphan reparented to init */
        p->running = 0;
        for (unsigned slot = 1; slot <= 2; slot++) {
            if (p->out[slot].fd < 0) continue;
            read_output(p, slot, 1);
            close_output(p, slot);
        }
        close_stdin(p);
        uint8_t code, kind;
        if (WIFEXITED(status)) { code = (uint8_t)WEXITSTATUS(status); kind = EXIT_EXITED; }
        else {
            code = (uint8_t)WTERMSIG(status);
            kind = WCOREDUMP(status) ? EXIT_DUMPED : EXIT_KILLED;
        }
        wire_process_died(outgoing, p->id, code, kind);
        if (!p->out[1].len && !p->out[2].len) free_process(p);
    }
}

int processes_signal(uint64_t id, int signo) {
    struct process *p = find(id);
    if (!p || !p->running) return -ESRCH;
    if (signo < 0 || signo >= NSIG) return -EINVAL;
    /* The whole group, so `sh -c` children go too; the leader alone if it left its group. */
    if (kill(-p->pid, signo) < 0 && kill(p->pid, signo) < 0) return -errno;
    /* A child forked while the group was being killed escapes one pass (a fork bomb): SIGKILL
     * the group again until nothing new is left to hit. */
    if (signo == SIGKILL) {
        for (int pass = 0; pass < 16; pass++) {
            sched_yield();
            if (kill(-p->pid, SIGKILL) < 0) break;
        }
    }
    return 0;
}

uint64_t processes_running(void) {
    uint64_t n = 0;
    for (size_t i = 0; i < table_len; i++) n += table[i]->running != 0;
    return n;
}

void processes_kill_all(void) {
    for (size_t i = 0; i < table_len; i++)
        if (table[i]->running) kill(-table[i]->pid, SIGKILL);
}

int processes_resize(uint64_t id, uint32_t rows, uint32_t cols) {
    struct process *p = find(id);
    if (!p || !p->running) return -ESRCH;
    if (!p->tty || p->out[1].fd < 0) return -ENOTTY;
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    return ioctl(p->out[1].fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}
