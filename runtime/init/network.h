/* What a provider's init sets up besides mounts (ya-runtime-vm init.c setup_network and the
 * hostname; v0.4.2 497-540, v0.5.2 568-600 and 2944-2948). */
#ifndef GVMI_NETWORK_H
#define GVMI_NETWORK_H

#include "boot.h"

/* /etc/hosts: upstream's six lines appended to the image's file (never rewritten);
 * /etc/resolv.conf: rewritten with 1.1.1.1 and 8.8.8.8; lo up as 127.0.0.1/24; the net.core
 * socket buffer sysctls; eth0 (VPN) and eth1 (outbound) get the provider's MTUs when present.
 * An image without /etc stops here (GVMI-INIT-FATAL hosts). */
void network_setup(void);

/* 0.5: the kernel's hostname= (the host passes golem, or the deploy's); 0.4 sets none, so the
 * kernel's "(none)" stays. */
void network_hostname(const struct boot_options *opts);

#endif
