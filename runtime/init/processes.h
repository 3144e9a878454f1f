/* Processes started by RUN_PROCESS: the table, stdio plumbing, output buffers, reaping. The
 * semantics are upstream's (ya-runtime-vm init.c, reference section 8) unless an extension asks
 * for more (push output, stdin pipes, terminals, signals to a whole tree). */
#ifndef GVMI_PROCESSES_H
#define GVMI_PROCESSES_H

#include <stdint.h>
#include "wire.h"
#include "splice_out.h"

/* epoll tags: (process id << 2) | slot, slot 0 = stdin, 1 = stdout, 2 = stderr. Process ids
 * start at 1, so tags below 4 are free for the agent's own fds. */
#define TAG_SLOT(tag) ((unsigned)((tag) & 3))
#define TAG_PROCESS(tag) ((tag) >> 2)

/* Where upstream keeps the files behind a process's fds that the host did not redirect. */
#define AGENT_FDS_DIR "/var/tmp/guest_agent_private/fds"

/* Where process output goes (the agent's outgoing queue, and the splice of push payloads from
 * their pipes), which epoll set to use, and which provider runtime's environment rules apply (4
 * or 5). */
void processes_init(int epfd, struct obuf *out, struct splice_out *spliced, int runtime_minor);

/* Why a process that was answered OK could not start (exit status 9 on a provider). */
struct spawn_outcome {
    uint8_t exec_step; /* enum exec_step, 0 when it started */
    int exec_errno;
};

/* Returns the new process id (> 0) or -errno (EFAULT: no BIN/ARG; EEXIST: a second entrypoint;
 * the errno of opening a FILE redirect; resources). A failed chdir/setresuid/execve still returns
 * the id (the process dies with status 9) and fills *outcome. */
int64_t processes_spawn(const struct request *req, int extensions, struct spawn_outcome *outcome);

/* KILL_PROCESS: SIGKILL to that pid only. 0, -EINVAL (id 0 or unknown), -ESRCH (not running). */
int processes_kill(uint64_t id);

/* SIGNAL extension: signo to the process and all its descendants. 0 or -ESRCH/-EINVAL. */
int processes_signal_tree(uint64_t id, int signo);

/* Queues stdin bytes for a process started with a stdin pipe; eof closes it afterwards. */
int processes_put_input(uint64_t id, const uint8_t *data, uint64_t len, int eof);

/* QUERY_OUTPUT: answers with bytes of a pull buffer or of a file-backed fd. */
void processes_query_output(const struct request *req);

void processes_on_event(uint64_t tag, uint32_t events);

/* SIGCHLD: reaps and sends NOTIFY_PROCESS_DIED (push output first drained). Returns 1 when the
 * entrypoint died: upstream then kills every process and stops the VM. */
int processes_reap(void);

/* Stops reading push-mode pipes while the host lags (congested), resumes after; pull buffers are
 * read only while they have room. */
void processes_update_interest(int congested);

/* RESIZE: the window size of a process's pseudo-terminal (SIGWINCH follows). */
int processes_resize(uint64_t id, uint32_t rows, uint32_t cols);

uint64_t processes_running(void);
void processes_kill_all(void);

#endif
