/* A process and everything it started, found through /proc (processes share init's session and
 * group, as on a provider, so there is no group to signal). */
#ifndef GVMI_PROCESS_TREE_H
#define GVMI_PROCESS_TREE_H

#include <sys/types.h>

/* Sends signo to root and its descendants. For SIGKILL the tree is first frozen with SIGSTOP,
 * pass after pass, so nothing forks away between the look and the kill. Returns 0 or -errno of
 * signalling root itself. Descendants whose parent already exited were reparented to init and
 * are no longer part of the tree. */
int process_tree_signal(pid_t root, int signo);

#endif
