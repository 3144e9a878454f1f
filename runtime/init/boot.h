/* What every part of init shares: the kernel command line, console messages, the fatal path. */
#ifndef GVMI_BOOT_H
#define GVMI_BOOT_H

#include <stdint.h>

struct boot_options {
    unsigned overlay_mb;  /* gvmi.overlay_mb=, default 128 (a provider's upper tmpfs) */
    char hostname[65];    /* hostname=, default "golem" */
    char root_device[64]; /* gvmi.root=, default /dev/vda */
    int debug;            /* gvmi.debug=1: log each request on the console */
    int runtime_minor;    /* gvmi.runtime=0.4 -> 4 (default), 0.5 -> 5: the provider runtime reproduced */
    int hostname_given;   /* hostname= was on the command line (a 0.4 host passes none) */
};

void boot_parse_cmdline(const char *cmdline, struct boot_options *opts);

/* Prints `GVMI-INIT-FATAL <step> <errno>` on the console (the host looks for this exact line),
 * then powers off. */
_Noreturn void boot_fatal(const char *step, int err);

/* sync + reboot: with QEMU -no-reboot and reboot=t on the command line this ends QEMU. */
_Noreturn void boot_power_off(void);

void boot_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t boot_uptime_ms(void);

#endif
