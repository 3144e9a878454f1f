#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "mounts.h"
#include "processes.h"
#include "resume.h"
#include "upper_usage.h"
#include "wire.h"

#define TAG_PORT 1
#define TAG_SIGNALS 2
#define PORT_NAME "manager_port"
#define OUTGOING_HIGH (1u << 20) /* stop reading process output above this much unsent */
#define INCOMING_MAX (64u << 20) /* a request larger than this is refused (E2BIG) */

struct agent {
    int port, epfd, signals, upper_fd, debug;
    struct obuf in, out;
    int port_wants_out;
    int discarding;           /* resynchronising after a bad request */
    uint64_t last_input_ms;   /* when the last bytes came in */
    uint64_t partial_since_ms;/* when the oldest incomplete request started */
};

/* /sys/class/virtio-ports/vportNpM/name holds each port's name; the device is /dev/vportNpM. */
static int open_port(void) {
    char path[300], name[64];
    for (int attempt = 0; attempt < 400; attempt++) {
        DIR *d = opendir("/sys/class/virtio-ports");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            ssize_t n = read(fd, name, sizeof name - 1);
            close(fd);
            if (n <= 0) continue;
            name[n] = 0;
            if (strncmp(name, PORT_NAME, strlen(PORT_NAME)) != 0) continue;
            snprintf(path, sizeof path, "/dev/%s", e->d_name);
            closedir(d);
            int port = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
            if (port < 0) boot_fatal("open-port", errno);
            return port;
        }
        if (d) closedir(d);
        usleep(5000);
    }
    boot_fatal("find-port", ENOENT);
}

static void epoll_set(struct agent *a, int fd, uint64_t tag, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.u64 = tag};
    if (epoll_ctl(a->epfd, op, fd, &ev) < 0) boot_fatal("epoll", errno);
}

static void flush_out(struct agent *a) {
    while (obuf_pending(&a->out)) {
        ssize_t n = write(a->port, a->out.data + a->out.head, obuf_pending(&a->out));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0) boot_fatal("write-port", errno);
        obuf_consume(&a->out, (size_t)n);
    }
    int want = obuf_pending(&a->out) > 0;
    if (want != a->port_wants_out) {
        epoll_set(a, a->port, TAG_PORT, EPOLLIN | (want ? EPOLLOUT : 0), EPOLL_CTL_MOD);
        a->port_wants_out = want;
    }
}

static void reply_stats(struct agent *a, uint64_t id) {
    struct statfs fs;
    struct sysinfo si;
    uint8_t body[8 * PROTO_STATS_FIELDS];
    if (fstatfs(a->upper_fd, &fs) < 0 || sysinfo(&si) < 0) { wire_err(&a->out, id, errno); return; }
    uint64_t unit = si.mem_unit ? si.mem_unit : 1;
    uint64_t fields[PROTO_STATS_FIELDS] = {
        (uint64_t)fs.f_blocks * fs.f_bsize,
        (uint64_t)(fs.f_blocks - fs.f_bfree) * fs.f_bsize,
        (uint64_t)si.totalram * unit,
        (uint64_t)(si.freeram + si.bufferram) * unit,
        boot_uptime_ms(),
        processes_running(),
    };
    for (int i = 0; i < PROTO_STATS_FIELDS; i++) put_u64(body + 8 * i, fields[i]);
    wire_ok_bytes(&a->out, id, body, sizeof body);
}

static void reply_status(struct agent *a, uint64_t id, int err) {
    if (err) wire_err(&a->out, id, (uint32_t)-err);
    else wire_ok(&a->out, id);
}

static void handle(struct agent *a, const struct request *req) {
    if (a->debug) boot_log("gvmi-agent: request %llu type %u", (unsigned long long)req->id, req->type);
    switch (req->type) {
    case MSG_QUIT:
        wire_ok(&a->out, req->id);
        flush_out(a);
        processes_kill_all();
        boot_power_off();
    case MSG_RUN_PROCESS: {
        int64_t r = processes_spawn(req);
        if (r < 0) wire_err(&a->out, req->id, (uint32_t)-r);
        else wire_ok_u64(&a->out, req->id, (uint64_t)r);
        break;
    }
    case MSG_KILL_PROCESS:
        reply_status(a, req->id, req->has_process_id ? processes_signal(req->process_id, SIGKILL) : -EINVAL);
        break;
    case MSG_SIGNAL:
        reply_status(a, req->id, req->has_process_id ? processes_signal(req->process_id, (int)req->signo) : -EINVAL);
        break;
    case MSG_MOUNT_VOLUME: {
        char tag[256], path[4096];
        if (!req->tag.len || req->tag.len >= sizeof tag || !req->path.len || req->path.len >= sizeof path ||
            memchr(req->tag.data, 0, req->tag.len) || memchr(req->path.data, 0, req->path.len)) {
            wire_err(&a->out, req->id, EINVAL);
            break;
        }
        memcpy(tag, req->tag.data, req->tag.len);
        tag[req->tag.len] = 0;
        memcpy(path, req->path.data, req->path.len);
        path[req->path.len] = 0;
        reply_status(a, req->id, mounts_volume(tag, path));
        break;
    }
    case MSG_QUERY_OUTPUT:
        processes_query_output(req->id, req->process_id, req->fd, req->length);
        break;
    case MSG_PUT_INPUT:
        reply_status(a, req->id, req->has_process_id
            ? processes_put_input(req->process_id, req->input.data, req->input.len, req->input_eof) : -EINVAL);
        break;
    case MSG_SYNC_FS:
        sync();
        wire_ok(&a->out, req->id);
        break;
    case MSG_STATS:
        reply_stats(a, req->id);
        break;
    case MSG_UPPER_USAGE:
        upper_usage_reply(&a->out, req->id, a->upper_fd, req->limit);
        break;
    case MSG_RESIZE:
        reply_status(a, req->id, req->has_process_id ? processes_resize(req->process_id, req->rows, req->cols) : -EINVAL);
        break;
    case MSG_RESUMED:
        reply_status(a, req->id, req->has_time && req->entropy.len
            ? resume_refresh(req->time_ns, req->entropy.data, (size_t)req->entropy.len) : -EINVAL);
        break;
    default: /* UPLOAD_FILE, upstream PUT_INPUT: not implemented upstream either */
        wire_err(&a->out, req->id, EPROTONOSUPPORT);
        break;
    }
}

static uint64_t peek_id(const struct obuf *in) {
    uint64_t id = 0;
    if (obuf_pending(in) < 8) return 0;
    for (int i = 7; i >= 0; i--) id = (id << 8) | in->data[in->head + i];
    return id;
}

static void start_discarding(struct agent *a) {
    a->in.head = a->in.len = 0;
    a->discarding = 1;
}

static void process_input(struct agent *a) {
    while (obuf_pending(&a->in) && !a->discarding) {
        struct request req;
        size_t used = 0;
        int err;
        enum parse_result r = wire_parse_request(a->in.data + a->in.head, obuf_pending(&a->in), &req, &used, &err);
        if (r == PARSE_NEED_MORE) {
            if (obuf_pending(&a->in) > INCOMING_MAX) {
                wire_err(&a->out, peek_id(&a->in), E2BIG);
                start_discarding(a);
            }
            return;
        }
        if (r == PARSE_INVALID) {
            if (a->debug) boot_log("gvmi-agent: bad request %llu: errno %d", (unsigned long long)req.id, err);
            wire_err(&a->out, req.id, (uint32_t)err);
            start_discarding(a);
            return;
        }
        handle(a, &req);
        obuf_consume(&a->in, used);
        a->partial_since_ms = boot_uptime_ms();
    }
}

static void read_port(struct agent *a) {
    for (;;) {
        if (obuf_reserve(&a->in, 65536) < 0) boot_fatal("alloc-input", ENOMEM);
        ssize_t n = read(a->port, a->in.data + a->in.len, a->in.cap - a->in.len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        /* 0: the host closed its end. Nobody can use this VM any more: sync and power off. */
        if (n == 0) { processes_kill_all(); boot_power_off(); }
        if (n < 0) boot_fatal("read-port", errno);
        uint64_t now = boot_uptime_ms();
        if (obuf_pending(&a->in) == 0) a->partial_since_ms = now;
        a->last_input_ms = now;
        if (a->discarding) continue; /* dropped: the rest of a bad request */
        a->in.len += (size_t)n;
        process_input(a);
    }
}

/* Called on every loop turn: ends a resync once the host went quiet, and answers a request
 * that stayed incomplete too long. Returns the epoll timeout to use. */
static int check_timers(struct agent *a) {
    uint64_t now = boot_uptime_ms();
    if (a->discarding) {
        if (now - a->last_input_ms >= PROTO_RESYNC_IDLE_MS) a->discarding = 0;
        else return PROTO_RESYNC_IDLE_MS;
    }
    if (obuf_pending(&a->in)) {
        if (now - a->partial_since_ms >= PROTO_INCOMPLETE_TIMEOUT_MS) {
            wire_err(&a->out, peek_id(&a->in), ETIMEDOUT);
            a->in.head = a->in.len = 0;
            return -1;
        }
        return 100;
    }
    return -1;
}

_Noreturn void agent_run(const struct boot_options *opts, int upper_fd) {
    struct agent a;
    memset(&a, 0, sizeof a);
    a.upper_fd = upper_fd;
    a.debug = opts->debug;
    a.port = open_port();
    if (a.debug) boot_log("gvmi-init: agent port open at %llu ms", (unsigned long long)boot_uptime_ms());
    /* Real-time for the agent, so a guest swamped by runaway processes (a fork bomb) still gets
     * its KILL through. The agent only runs when it has work, so it starves nobody; children
     * revert to normal scheduling (RESET_ON_FORK). musl has no sched_setscheduler wrapper. */
    struct sched_param rt = {.sched_priority = 10};
    if (syscall(SYS_sched_setscheduler, 0, SCHED_FIFO | SCHED_RESET_ON_FORK, &rt) < 0 && a.debug)
        boot_log("gvmi-agent: no real-time priority: %s", strerror(errno));
    if ((a.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) boot_fatal("epoll", errno);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((a.signals = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) boot_fatal("signalfd", errno);

    epoll_set(&a, a.port, TAG_PORT, EPOLLIN, EPOLL_CTL_ADD);
    epoll_set(&a, a.signals, TAG_SIGNALS, EPOLLIN, EPOLL_CTL_ADD);
    processes_init(a.epfd, &a.out);

    wire_ready(&a.out, boot_uptime_ms());
    flush_out(&a);

    for (;;) {
        struct epoll_event events[32];
        int timeout = check_timers(&a);
        flush_out(&a); /* an ERR queued by check_timers must not wait for the next request */
        int n = epoll_wait(a.epfd, events, 32, timeout);
        if (n < 0 && errno != EINTR) boot_fatal("epoll-wait", errno);
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == TAG_PORT) {
                if (events[i].events & (EPOLLIN | EPOLLHUP)) read_port(&a);
                if (events[i].events & EPOLLOUT) flush_out(&a);
            } else if (tag == TAG_SIGNALS) {
                struct signalfd_siginfo si;
                while (read(a.signals, &si, sizeof si) > 0) {}
                processes_reap();
            } else {
                processes_on_event(tag, events[i].events);
            }
        }
        flush_out(&a);
        processes_update_interest(obuf_pending(&a.out) > OUTGOING_HIGH);
    }
}
