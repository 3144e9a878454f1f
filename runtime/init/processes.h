/* Processes started by RUN_PROCESS: spawning, stdio plumbing, output delivery, reaping. */
#ifndef GVMI_PROCESSES_H
#define GVMI_PROCESSES_H

#include <stdint.h>
#include "wire.h"

/* epoll tags: (process id << 2) | slot, slot 0 = stdin, 1 = stdout, 2 = stderr. Process ids
 * start at 1, so tags below 4 are free for the agent's own fds. */
#define TAG_SLOT(tag) ((unsigned)((tag) & 3))
#define TAG_PROCESS(tag) ((tag) >> 2)

/* Where process output goes (the agent's outgoing queue) and which epoll set to use. */
void processes_init(int epfd, struct obuf *out);

/* Returns the new process id (> 0) or -errno (exec/chdir/credentials failure, bad request). */
int64_t processes_spawn(const struct request *req);

/* Sends signo to the process's group (each process leads its own session). 0 or -ESRCH. */
int processes_signal(uint64_t id, int signo);

/* Queues stdin bytes for a process started with a stdin pipe; eof closes it afterwards. */
int processes_put_input(uint64_t id, const uint8_t *data, uint64_t len, int eof);

/* QUERY_OUTPUT: answers msg_id with up to len bytes of a pull-mode buffer. */
void processes_query_output(uint64_t msg_id, uint64_t id, uint8_t fd, uint64_t len);

void processes_on_event(uint64_t tag, uint32_t events);

/* SIGCHLD: reaps, delivers the rest of each dead process's output, then NOTIFY_PROCESS_DIED. */
void processes_reap(void);

/* Stops reading push-mode pipes while the host lags (congested), resumes after. */
void processes_update_interest(int congested);

/* RESIZE: the window size of a process's pseudo-terminal (SIGWINCH follows). */
int processes_resize(uint64_t id, uint32_t rows, uint32_t cols);

uint64_t processes_running(void);
void processes_kill_all(void);

#endif
