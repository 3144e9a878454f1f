/* The agent loop: requests from the host on manager_port, replies and notifications back. */
#ifndef GVMI_AGENT_H
#define GVMI_AGENT_H

#include "boot.h"

/* Serves until QUIT or until the host closes the channel; then powers off. */
_Noreturn void agent_run(const struct boot_options *opts, int upper_fd);

#endif
