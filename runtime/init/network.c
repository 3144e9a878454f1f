#include "network.h"
#include "net_control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Upstream's lines, in its order, "<ip>\t<names>\n" (init.c setup_network). */
static const char HOSTS_LINES[] =
    "127.0.0.1\tlocalhost\n"
    "::1\tip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n";

static const char RESOLV_CONF[] = "nameserver 1.1.1.1\nnameserver 8.8.8.8\n";

/* NET_MEM_DEFAULT and NET_MEM_MAX (init.c:67-68 / 65-66), written as "%ld" with no newline. */
static const struct { const char *path, *value; } NET_CORE[] = {
    {"/proc/sys/net/core/rmem_default", "1048576"},
    {"/proc/sys/net/core/rmem_max", "2097152"},
    {"/proc/sys/net/core/wmem_default", "1048576"},
    {"/proc/sys/net/core/wmem_max", "2097152"},
};

/* Upstream uses fopen ("a" for hosts, "w" for resolv.conf and the sysctls): O_CREAT with mode
 * 0666 less the umask, a symlink followed (not replaced); the /etc files are synced, the sysctls
 * are not (procfs has no fsync). Returns 0 or -errno. */
static int write_file(const char *path, int flags, const char *text, int sync) {
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0666);
    if (fd < 0) return -errno;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int err = w < 0 ? -errno : (size_t)w != n ? -EIO : 0;
    if (!err && sync && fsync(fd) < 0) err = -errno;
    close(fd);
    return err;
}

static void set_in_addr(struct ifreq *ifr, const char *ip) {
    struct sockaddr_in *sa = (struct sockaddr_in *)&ifr->ifr_addr;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sa->sin_addr);
}

/* Upstream's sequence (network.c net_if_addr): address, then netmask /24, then flags = IFF_UP.
 * Bringing lo up also makes the kernel add its own 127.0.0.1/8 beside it (devinet.c NETDEV_UP);
 * the same happens on a provider, whose init does exactly this. */
static void loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) boot_fatal("socket-lo", errno);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    set_in_addr(&ifr, "127.0.0.1");
    if (ioctl(s, SIOCSIFADDR, &ifr) < 0) boot_fatal("lo-addr", errno);
    set_in_addr(&ifr, "255.255.255.0");
    if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) boot_fatal("lo-netmask", errno);
    memset(&ifr.ifr_ifru, 0, sizeof ifr.ifr_ifru);
    ifr.ifr_flags = IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) boot_fatal("lo-up", errno);
    close(s);
}

void network_setup(void) {
    /* hosts first, as upstream: without /etc this is where a provider's boot stops. */
    int err = write_file("/etc/hosts", O_APPEND, HOSTS_LINES, 1);
    if (err) boot_fatal("hosts", -err);
    err = write_file("/etc/resolv.conf", O_TRUNC, RESOLV_CONF, 1);
    if (err) boot_fatal("resolv.conf", -err);
    loopback_up();
    for (size_t i = 0; i < sizeof NET_CORE / sizeof NET_CORE[0]; i++) {
        err = write_file(NET_CORE[i].path, O_TRUNC, NET_CORE[i].value, 0);
        if (err) boot_fatal("sysctl-net-core", -err);
    }
    /* The NICs a requestor's network or outbound access brings (down, unaddressed until NET_CTL);
     * without them these fail quietly, as upstream's. */
    net_set_mtu(NET_DEV_VPN, NET_MTU_VPN);
    net_set_mtu(NET_DEV_INET, NET_MTU_INET);
}

void network_hostname(const struct boot_options *opts) {
    /* 0.5.2 sets it only when hostname= was on the command line, and ignores a failure. */
    if (opts->runtime_minor < 5 || !opts->hostname_given) return;
    if (sethostname(opts->hostname, strlen(opts->hostname)) < 0) { /* as upstream: ignored */ }
}
