#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "deploy_volumes.h"
#include "mounts.h"
#include "net_control.h"
#include "processes.h"
#include "resume.h"
#include "splice_out.h"
#include "upper_usage.h"
#include "wire.h"

#define TAG_PORT 1
#define TAG_SIGNALS 2
#define PORT_NAME "manager_port"
#define OUTGOING_HIGH (1u << 20) /* stop reading push output above this much unsent */
#define INCOMING_MAX PROTO_MAX_MESSAGE /* a request larger than this cannot be held */
/* While no host is connected, upstream retries every second; ours looks every 20 ms, so a host
 * that connects (or a VM restored from a snapshot) is served at once. */
#define HOST_POLL_MS 20

struct agent {
    int port, epfd, signals, upper_fd, debug;
    struct obuf in, out;
    struct splice_out spliced; /* push output payloads sent from their pipes (splice_out.h) */
    int port_wants_out;
    int host_gone;     /* the port read 0: no host connected; waiting for one */
    int extensions;    /* the host sent MSG_HELLO */
    int runtime_minor; /* the provider runtime reproduced: 4 or 5 */
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
    if (a->host_gone) return;
    int r = splice_out_flush(&a->spliced, &a->out, a->port);
    /* EAGAIN: the port is full. The host went away mid-write: keep what is left for the next one. */
    if (r < 0 && r != -EAGAIN && r != -EPIPE && r != -ENODEV && r != -ECONNRESET)
        boot_fatal("write-port", -r);
    int want = obuf_pending(&a->out) > 0 || splice_out_busy(&a->spliced);
    if (want != a->port_wants_out) {
        epoll_set(a, a->port, TAG_PORT, EPOLLIN | (want ? EPOLLOUT : 0), EPOLL_CTL_MOD);
        a->port_wants_out = want;
    }
}

static void reply_stats(struct agent *a, uint64_t id) {
    struct statfs fs;
    struct sysinfo si;
    /* The fixed fields, then one entry per ram or storage volume of the deploy (deploy_volumes.h):
     * a host that knows only the fixed fields reads them and ignores the rest. */
    uint8_t body[8 * PROTO_STATS_FIELDS + 8192];
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
    size_t volumes = deploy_volumes_stats(body + 8 * PROTO_STATS_FIELDS, sizeof body - 8 * PROTO_STATS_FIELDS);
    wire_ok_bytes(&a->out, id, body, 8 * PROTO_STATS_FIELDS + volumes);
}

static void reply_status(struct agent *a, uint64_t id, int err) {
    if (err) wire_err(&a->out, id, (uint32_t)-err);
    else wire_ok(&a->out, id);
}

/* Where upstream's init dies: the VM stops. The console line lets the host explain it. */
static _Noreturn void stop_like_upstream(struct agent *a, const char *reason, uint64_t id, uint8_t type) {
    flush_out(a);
    boot_log("GVMI-AGENT-STOP %s (request %llu, type %u)", reason, (unsigned long long)id, type);
    processes_kill_all();
    boot_power_off();
}

/* A NUL-terminated copy of a span, or NULL (empty, too long, or holding a NUL). */
static const char *span_cstr(struct span s, char *buf, size_t cap) {
    if (s.len >= cap || memchr(s.data, 0, s.len)) return NULL;
    memcpy(buf, s.data, s.len);
    buf[s.len] = 0;
    return buf;
}

static void handle_mount(struct agent *a, const struct request *req) {
    char tag[256], path[4096];
    const char *t = req->has_tag ? span_cstr(req->tag, tag, sizeof tag) : NULL;
    const char *p = req->has_path ? span_cstr(req->path, path, sizeof path) : NULL;
    /* upstream: no tag, no path, or a relative path -> EINVAL */
    if (!t || !p || p[0] != '/') { wire_err(&a->out, req->id, EINVAL); return; }
    reply_status(a, req->id, mounts_volume(tag, path));
}

/* NET_HOST: `ip<TAB>hostname` lines appended to /etc/hosts (upstream add_network_hosts). */
static void handle_net_host(struct agent *a, const struct request *req) {
    FILE *f = fopen("/etc/hosts", "a");
    int ok = f != NULL;
    for (uint64_t i = 0; ok && i < req->host_count && i < PROTO_MAX_HOSTS; i++) {
        char ip[256], name[256];
        const char *ipc = span_cstr(req->hosts[i][0], ip, sizeof ip);
        const char *namec = span_cstr(req->hosts[i][1], name, sizeof name);
        if (!ipc || !namec || fprintf(f, "%s\t%s\n", ipc, namec) < 2) ok = 0;
    }
    if (f && (fflush(f) || fsync(fileno(f)))) ok = 0;
    if (f && fclose(f)) ok = 0;
    /* upstream sends its -1 as the error code */
    if (ok) wire_ok(&a->out, req->id);
    else wire_err(&a->out, req->id, 0xffffffffu);
}

/* NET_CTL: the requestor's network joined (net_control.c). Without that NIC (no network) the
 * ioctls fail and upstream sends its -1 as the error code; an IPv4 address without a mask is
 * EINVAL first; nothing to configure is OK. */
static void handle_net_ctl(struct agent *a, const struct request *req) {
    char addr[64], mask[64], gateway[64], if_addr[64];
    struct net_ctl ctl = {
        .addr = req->net_addr.len ? span_cstr(req->net_addr, addr, sizeof addr) : NULL,
        .mask = req->net_mask.len ? span_cstr(req->net_mask, mask, sizeof mask) : NULL,
        .gateway = req->has_gateway ? span_cstr(req->net_gateway, gateway, sizeof gateway) : NULL,
        .if_addr = req->has_if_addr ? span_cstr(req->net_if_addr, if_addr, sizeof if_addr) : NULL,
        .if_kind = req->net_if,
    };
    /* A field no address fits in (or holding a NUL) is no address: the kernel would refuse it. */
    if ((req->has_if_addr && !ctl.if_addr) || (req->has_gateway && !ctl.gateway)) {
        wire_err(&a->out, req->id, 0xffffffffu);
        return;
    }
    uint32_t err = net_control(&ctl);
    if (err) wire_err(&a->out, req->id, err);
    else wire_ok(&a->out, req->id);
}

static void handle_run(struct agent *a, const struct request *req) {
    struct spawn_outcome outcome;
    int64_t r = processes_spawn(req, a->extensions, &outcome);
    if (r < 0) { wire_err(&a->out, req->id, (uint32_t)-r); return; }
    wire_ok_u64(&a->out, req->id, (uint64_t)r);
    /* Upstream's host sees only the exit status 9 that follows; ours is told why. */
    if (outcome.exec_errno && a->extensions)
        wire_exec_failed(&a->out, (uint64_t)r, outcome.exec_step, (uint32_t)outcome.exec_errno);
}

static void handle(struct agent *a, const struct request *req) {
    if (a->debug) boot_log("gvmi-agent: request %llu type %u", (unsigned long long)req->id, req->type);
    /* A bad RFD (upstream reads the whole request, then answers the first such error). */
    if (req->soft_error) { wire_err(&a->out, req->id, req->soft_error); return; }
    switch (req->type) {
    case MSG_QUIT:
        wire_ok(&a->out, req->id);
        flush_out(a);
        processes_kill_all();
        boot_power_off();
    case MSG_RUN_PROCESS:
        handle_run(a, req);
        break;
    case MSG_KILL_PROCESS:
        reply_status(a, req->id, processes_kill(req->has_process_id ? req->process_id : 0));
        break;
    case MSG_MOUNT_VOLUME:
        handle_mount(a, req);
        break;
    case MSG_QUERY_OUTPUT:
        processes_query_output(req);
        break;
    case MSG_NET_CTL:
        handle_net_ctl(a, req);
        break;
    case MSG_NET_HOST:
        handle_net_host(a, req);
        break;
    case MSG_HELLO:
        a->extensions = 1;
        wire_ok_u64(&a->out, req->id, PROTO_EXTENSION_VERSION);
        break;
    case MSG_SIGNAL:
        reply_status(a, req->id, req->has_process_id ? processes_signal_tree(req->process_id, (int)req->signo) : -EINVAL);
        break;
    case MSG_PUT_INPUT:
        reply_status(a, req->id, req->has_process_id
            ? processes_put_input(req->process_id, req->input.data, req->input.len, req->input_eof) : -EINVAL);
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
    case MSG_CLOCK: {
        uint64_t now_ns;
        int r = resume_clock(req->clock_step_ns, &now_ns);
        if (r) wire_err(&a->out, req->id, (uint32_t)-r);
        else wire_ok_u64(&a->out, req->id, now_ns);
        break;
    }
    default: /* not reached: the parser stops on types it does not know */
        stop_like_upstream(a, "unknown request type", req->id, req->type);
    }
}

static void process_input(struct agent *a) {
    while (obuf_pending(&a->in)) {
        struct request req;
        size_t used = 0;
        int err;
        enum parse_result r = wire_parse_request(a->in.data + a->in.head, obuf_pending(&a->in), &req, &used, &err, a->extensions);
        if (r == PARSE_NEED_MORE) {
            /* Upstream reads a request to its end however long that takes; one we cannot even
             * hold is where it would fail to allocate, and stop. */
            if (obuf_pending(&a->in) > INCOMING_MAX) stop_like_upstream(a, "a request too large to hold", 0, 0);
            return;
        }
        if (r == PARSE_STOP) {
            if (err) wire_err(&a->out, req.id, (uint32_t)err);
            stop_like_upstream(a, req.stop_reason ? req.stop_reason : "bad request", req.id, req.type);
        }
        handle(a, &req);
        obuf_consume(&a->in, used);
    }
}

/* The host hung up: like upstream, wait for the next one (do not power off). Looks again every
 * HOST_POLL_MS; the orphan reaper on the host ends QEMU if the host died. */
static void host_went_away(struct agent *a) {
    if (a->host_gone) return;
    a->host_gone = 1;
    epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->port, NULL);
    a->port_wants_out = 0;
    boot_log("gvmi-agent: waiting for host connection ...");
}

static void read_port(struct agent *a) {
    for (;;) {
        if (obuf_reserve(&a->in, 65536) < 0) boot_fatal("alloc-input", ENOMEM);
        ssize_t n = read(a->port, a->in.data + a->in.len, a->in.cap - a->in.len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n == 0) { host_went_away(a); return; }
        if (n < 0) boot_fatal("read-port", errno);
        a->in.len += (size_t)n;
        process_input(a);
    }
}

/* While waiting for a host: a read that does not return 0 means one is there again. */
static void look_for_host(struct agent *a) {
    if (obuf_reserve(&a->in, 65536) < 0) boot_fatal("alloc-input", ENOMEM);
    ssize_t n = read(a->port, a->in.data + a->in.len, a->in.cap - a->in.len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return;
    a->host_gone = 0;
    epoll_set(a, a->port, TAG_PORT, EPOLLIN, EPOLL_CTL_ADD);
    if (a->debug) boot_log("gvmi-agent: host connected");
    if (n > 0) {
        a->in.len += (size_t)n;
        process_input(a);
        read_port(a);
    }
}

_Noreturn void agent_run(const struct boot_options *opts, int upper_fd) {
    struct agent a;
    memset(&a, 0, sizeof a);
    a.upper_fd = upper_fd;
    a.debug = opts->debug;
    a.runtime_minor = opts->runtime_minor;
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
    splice_out_init(&a.spliced);
    processes_init(a.epfd, &a.out, &a.spliced, opts->runtime_minor);
    /* Nothing is sent unprompted (upstream sends nothing either): the host's first request, a
     * HELLO or a MOUNT_VOLUME, is answered once the port is read. */
    read_port(&a);

    for (;;) {
        struct epoll_event events[32];
        flush_out(&a);
        int n = epoll_wait(a.epfd, events, 32, a.host_gone ? HOST_POLL_MS : -1);
        if (n < 0 && errno != EINTR) boot_fatal("epoll-wait", errno);
        if (a.host_gone) look_for_host(&a);
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == TAG_PORT) {
                if (a.host_gone) continue;
                if (events[i].events & (EPOLLIN | EPOLLHUP)) read_port(&a);
                if (!a.host_gone && (events[i].events & EPOLLOUT)) flush_out(&a);
            } else if (tag == TAG_SIGNALS) {
                struct signalfd_siginfo si;
                while (read(a.signals, &si, sizeof si) > 0) {}
                /* upstream: when the entrypoint exits, every process is killed and the VM stops */
                if (processes_reap()) stop_like_upstream(&a, "the entrypoint exited", 0, 0);
            } else {
                processes_on_event(tag, events[i].events);
            }
        }
        flush_out(&a);
        /* A payload still in flight means the port is full: read no more push output until it
         * has gone. */
        processes_update_interest(obuf_pending(&a.out) > OUTGOING_HIGH || splice_out_busy(&a.spliced));
    }
}
