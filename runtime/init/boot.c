#include "boot.h"
#include "deploy_volumes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

static void copy_value(char *dst, size_t cap, const char *src) {
    size_t n = strcspn(src, " \t\n");
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

void boot_parse_cmdline(const char *cmdline, struct boot_options *opts) {
    opts->overlay_mb = 128;
    strcpy(opts->hostname, "golem");
    strcpy(opts->root_device, "/dev/vda");
    opts->debug = 0;
    opts->runtime_minor = 4;
    opts->hostname_given = 0;
    const char *p = cmdline;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!strncmp(p, "gvmi.overlay_mb=", 16)) {
            unsigned long mb = strtoul(p + 16, NULL, 10);
            if (mb > 0 && mb < (1ul << 20)) opts->overlay_mb = (unsigned)mb;
        } else if (!strncmp(p, "hostname=", 9)) {
            copy_value(opts->hostname, sizeof opts->hostname, p + 9);
            opts->hostname_given = opts->hostname[0] != 0;
        } else if (!strncmp(p, "gvmi.runtime=0.5", 16)) {
            opts->runtime_minor = 5;
        } else if (!strncmp(p, "gvmi.runtime=0.4", 16)) {
            opts->runtime_minor = 4;
        } else if (!strncmp(p, "gvmi.root=", 10)) {
            copy_value(opts->root_device, sizeof opts->root_device, p + 10);
        } else if (!strncmp(p, "gvmi.debug=1", 12)) {
            opts->debug = 1;
        }
        p = strpbrk(p, " \t\n");
    }
    if (!opts->hostname[0]) strcpy(opts->hostname, "golem");
    deploy_volumes_parse(cmdline);
}

void boot_log(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    /* stderr is the console: one write per line keeps lines whole. */
    if (write(2, line, (size_t)n) < 0) { /* nothing else to tell */ }
}

_Noreturn void boot_power_off(void) {
    sync();
    reboot(RB_AUTOBOOT);
    for (;;) pause();
}

_Noreturn void boot_fatal(const char *step, int err) {
    boot_log("GVMI-INIT-FATAL %s %d (%s)", step, err, strerror(err));
    boot_power_off();
}

uint64_t boot_uptime_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
