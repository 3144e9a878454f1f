/* Starting one process the way upstream's init does (ya-runtime-vm init.c child_wrapper): stdio
 * wired, every other fd closed, chdir, credentials, execve of BIN as given (no PATH search). */
#ifndef GVMI_SPAWN_H
#define GVMI_SPAWN_H

#include <stdint.h>
#include <sys/types.h>

/* Per fd 0-2 of the child: a pipe end (fd >= 0), or a file the child opens (path). */
struct child_stdio {
    int fd[3];
    const char *path[3];
};

/* envp value meaning "init's own environment" (upstream passes `environ` when no ENV was sent). */
#define SPAWN_INIT_ENVIRONMENT ((char **)-1)

struct spawn_request {
    const char *bin;
    char **argv;
    char **envp;      /* NULL: an empty environment; SPAWN_INIT_ENVIRONMENT: init's */
    const char *cwd;  /* NULL: "/" */
    uint32_t uid, gid;
    int tty;          /* extension: a new session with fd 0 as its controlling terminal */
};

struct spawn_result {
    pid_t pid;
    uint8_t failed_step; /* enum exec_step when chdir/credentials/execve failed, else 0 */
    int failed_errno;
};

/* 0 with *result filled (also when the process could not start after its fds were closed: it
 * then exits with EXEC_FAILED_STATUS, as upstream's does, and failed_step says why), or -errno
 * when it failed before (opening a FILE redirect: upstream answers that errno). */
int spawn_process(const struct spawn_request *request, const struct child_stdio *stdio,
                  struct spawn_result *result);

#endif
