/* gvmi-test guest init: boots like a Golem provider's VM, then serves the agent protocol.
 * PID 1 in the initramfs; after mounts_switch_root it runs inside the image's root. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "boot.h"
#include "mounts.h"
#include "network.h"

int main(void) {
    struct boot_options opts;
    char cmdline[4096] = {0};

    /* The kernel's default for init, said out loud: upstream's init never changes it, so it shapes
     * the mode of / (and of what init creates) and every process inherits it. */
    umask(022);
    mounts_early();
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
        if (n > 0) cmdline[n] = 0;
        close(fd);
    }
    boot_parse_cmdline(cmdline, &opts);
    /* gvmi.debug=1: when each step ended, in guest uptime (where a slow boot spends its time). */
    if (opts.debug) boot_log("gvmi-init: early mounts done at %llu ms", (unsigned long long)boot_uptime_ms());
    int upper = mounts_switch_root(&opts);
    if (opts.debug) boot_log("gvmi-init: image root mounted at %llu ms", (unsigned long long)boot_uptime_ms());
    /* Upstream's order after its mounts: setup_network, setup_agent_directories, hostname. */
    network_setup();
    mounts_agent_directories();
    network_hostname(&opts);
    if (opts.debug) boot_log("gvmi-init: identity set at %llu ms", (unsigned long long)boot_uptime_ms());
    agent_run(&opts, upper);
}
