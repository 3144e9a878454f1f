#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../include/proto.h"

extern char **environ;

/* What the child tells the parent on a close-on-exec pipe: nothing (EOF) when execve worked. */
struct report {
    uint8_t after_close; /* 0: failed while wiring stdio (upstream answers ERR errno) */
    uint8_t step;        /* enum exec_step, when after_close */
    int32_t err;
};

static _Noreturn void fail(int report_fd, uint8_t after_close, uint8_t step, int err) {
    struct report r = {after_close, step, err};
    if (write(report_fd, &r, sizeof r) < 0) { /* the parent sees EOF: it started, then exits */ }
    /* upstream: before its fds are closed the child exits with the errno; after, its write to the
     * closed status pipe fails with EBADF and it exits with that: 9 */
    _exit(after_close ? EXEC_FAILED_STATUS : err);
}

static int open_redirect(unsigned fd, const char *path) {
    /* upstream's redirect_fd_to_path: an absolute path not starting with "//" */
    if (path[0] != '/' || path[1] == '/') { errno = EINVAL; return -1; }
    return open(path, (fd == 0 ? O_RDONLY : O_WRONLY | O_CREAT) | O_NOCTTY, 0700);
}

static _Noreturn void child(const struct spawn_request *rq, const struct child_stdio *stdio, int report_fd) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* The agent ignores SIGPIPE; an ignored signal would stay ignored across execve. */
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    if (rq->tty) setsid();
    for (unsigned fd = 0; fd < 3; fd++) {
        int source = stdio->path[fd] ? open_redirect(fd, stdio->path[fd]) : stdio->fd[fd];
        if (source < 0 || (source != (int)fd && dup2(source, (int)fd) < 0)) fail(report_fd, 0, 0, errno);
    }
    if (rq->tty && ioctl(0, TIOCSCTTY, 0) < 0) fail(report_fd, 0, 0, errno);
    /* Every other fd goes (upstream's close_range(3, ~0)); the report pipe closes at execve. */
    if (report_fd > 3) syscall(SYS_close_range, 3u, (unsigned)report_fd - 1, 0u);
    syscall(SYS_close_range, (unsigned)report_fd + 1, ~0u, 0u);
    if (chdir("/") < 0 || (rq->cwd && chdir(rq->cwd) < 0)) fail(report_fd, 1, EXEC_STEP_CHDIR, errno);
    if (setresgid(rq->gid, rq->gid, rq->gid) < 0) fail(report_fd, 1, EXEC_STEP_SETGID, errno);
    if (setresuid(rq->uid, rq->uid, rq->uid) < 0) fail(report_fd, 1, EXEC_STEP_SETUID, errno);
    char *empty[] = {NULL};
    char **envp = rq->envp == SPAWN_INIT_ENVIRONMENT ? environ : rq->envp ? rq->envp : empty;
    execve(rq->bin, rq->argv, envp);
    fail(report_fd, 1, EXEC_STEP_EXECVE, errno);
}

int spawn_process(const struct spawn_request *rq, const struct child_stdio *stdio, struct spawn_result *result) {
    int report[2];
    memset(result, 0, sizeof *result);
    if (pipe2(report, O_CLOEXEC) < 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(report[0]);
        close(report[1]);
        return err;
    }
    if (pid == 0) {
        close(report[0]);
        child(rq, stdio, report[1]);
    }
    close(report[1]);
    struct report r;
    ssize_t n;
    do n = read(report[0], &r, sizeof r); while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof r && !r.after_close) {
        waitpid(pid, NULL, 0); /* it exits at once */
        return -r.err;
    }
    result->pid = pid;
    if (n == (ssize_t)sizeof r) {
        result->failed_step = r.step;
        result->failed_errno = r.err;
    }
    return 0;
}
