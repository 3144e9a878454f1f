#include "net_control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* The kernel's struct in6_ifreq (linux/ipv6.h clashes with the libc headers). */
struct ifreq6 {
    struct in6_addr addr;
    uint32_t prefixlen;
    int32_t ifindex;
};

/* Upstream names a second address on one interface "<if>:<n>", n counting across the boot. */
static unsigned alias_count;

/* An ioctl on a fresh socket of that family; -1 (errno set) as upstream's ret. */
static int sock_ioctl(int family, int type, unsigned long request, void *arg) {
    int s = socket(family, type | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    int r = ioctl(s, request, arg);
    int saved = errno;
    close(s);
    errno = saved;
    return r < 0 ? -1 : 0;
}

/* The MAC a provider's guest takes on: 90:13 and the last four bytes of its address. */
static int set_mac(const char *ifname, const unsigned char last4[4]) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    unsigned char mac[6] = {0x90, 0x13, last4[0], last4[1], last4[2], last4[3]};
    memcpy(ifr.ifr_hwaddr.sa_data, mac, sizeof mac);
    return sock_ioctl(AF_PACKET, SOCK_RAW, SIOCSIFHWADDR, &ifr);
}

/* The name the next address goes on: the interface itself, or an alias when it has an IPv4
 * address already (upstream asks SIOCGIFADDR first). */
static void address_slot(int family, const char *ifname, struct ifreq *ifr) {
    memset(ifr, 0, sizeof *ifr);
    snprintf(ifr->ifr_name, sizeof ifr->ifr_name, "%s", ifname);
    if (sock_ioctl(family, SOCK_DGRAM, SIOCGIFADDR, ifr) == 0) {
        char alias[IFNAMSIZ];
        snprintf(alias, sizeof alias, "%.10s:%u", ifname, ++alias_count);
        memset(ifr, 0, sizeof *ifr);
        memcpy(ifr->ifr_name, alias, sizeof alias);
    }
}

static void put_in_addr(struct sockaddr *sa, const char *text) {
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    memset(in, 0, sizeof *in);
    in->sin_family = AF_INET;
    /* As upstream: a string that is not an address leaves 0.0.0.0 (inet_pton answers 0, not < 0). */
    inet_pton(AF_INET, text, &in->sin_addr);
}

static int add_ipv4(const char *ifname, const char *ip, const char *mask) {
    struct ifreq ifr;
    address_slot(AF_INET, ifname, &ifr);
    put_in_addr(&ifr.ifr_addr, ip);
    if (sock_ioctl(AF_INET, SOCK_DGRAM, SIOCSIFADDR, &ifr) < 0) return -1;
    put_in_addr(&ifr.ifr_netmask, mask);
    if (sock_ioctl(AF_INET, SOCK_DGRAM, SIOCSIFNETMASK, &ifr) < 0) return -1;
    ifr.ifr_flags = IFF_UP;
    if (sock_ioctl(AF_INET, SOCK_DGRAM, SIOCSIFFLAGS, &ifr) < 0) return -1;
    struct in_addr a = {0};
    inet_pton(AF_INET, ip, &a);
    return set_mac(ifname, (const unsigned char *)&a);
}

/* "addr/len" gives the prefix; without it, /128 (upstream parse_prefix_len). */
static int prefix_len(const char *ip6) {
    const char *slash = strchr(ip6, '/');
    return slash ? (int)strtol(slash + 1, NULL, 10) : 128;
}

static int add_ipv6(const char *ifname, const char *ip6) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (sock_ioctl(AF_INET6, SOCK_DGRAM, SIOCGIFINDEX, &ifr) < 0) return -1;
    int index = ifr.ifr_ifindex;
    address_slot(AF_INET6, ifname, &ifr);
    struct ifreq6 r6 = {.prefixlen = (uint32_t)prefix_len(ip6), .ifindex = index};
    inet_pton(AF_INET6, ip6, &r6.addr);
    if (sock_ioctl(AF_INET6, SOCK_DGRAM, SIOCSIFADDR, &r6) < 0) return -1;
    ifr.ifr_flags = IFF_UP;
    if (sock_ioctl(AF_INET6, SOCK_DGRAM, SIOCSIFFLAGS, &ifr) < 0) return -1;
    return set_mac(ifname, r6.addr.s6_addr + 12);
}

/* A route to addr/mask via the gateway, metric 101; without addr a default route, metric 0. */
static int add_route4(const char *ifname, const char *addr, const char *mask, const char *via) {
    struct rtentry rt;
    char dev[IFNAMSIZ];
    memset(&rt, 0, sizeof rt);
    snprintf(dev, sizeof dev, "%s", ifname);
    rt.rt_dev = dev;
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_metric = addr ? 101 : 0;
    struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
    gw->sin_family = AF_INET;
    gw->sin_addr.s_addr = inet_addr(via);
    struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
    dst->sin_family = AF_INET;
    dst->sin_addr.s_addr = addr ? inet_addr(addr) : INADDR_ANY;
    struct sockaddr_in *gm = (struct sockaddr_in *)&rt.rt_genmask;
    gm->sin_family = AF_INET;
    gm->sin_addr.s_addr = mask ? inet_addr(mask) : INADDR_ANY;
    return sock_ioctl(AF_INET, SOCK_DGRAM, SIOCADDRT, &rt);
}

static int add_route6(const char *ifname, const char *addr, const char *via) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (sock_ioctl(AF_INET6, SOCK_DGRAM, SIOCGIFINDEX, &ifr) < 0) return -1;
    const char *dst = addr ? addr : "::";
    struct in6_rtmsg rt;
    memset(&rt, 0, sizeof rt);
    rt.rtmsg_dst_len = (uint16_t)prefix_len(dst);
    rt.rtmsg_metric = 101;
    rt.rtmsg_ifindex = ifr.ifr_ifindex;
    rt.rtmsg_flags = RTF_UP | RTF_GATEWAY;
    inet_pton(AF_INET6, via, &rt.rtmsg_gateway);
    inet_pton(AF_INET6, dst, &rt.rtmsg_dst);
    return sock_ioctl(AF_INET6, SOCK_DGRAM, SIOCADDRT, &rt);
}

uint32_t net_control(const struct net_ctl *req) {
    const char *ifname = req->if_kind == NET_IF_INET ? NET_DEV_INET : NET_DEV_VPN;
    int ret = 0;
    if (req->if_addr) {
        if (strchr(req->if_addr, ':')) ret = add_ipv6(ifname, req->if_addr);
        else if (!req->mask) return EINVAL;
        else ret = add_ipv4(ifname, req->if_addr, req->mask);
        if (ret < 0) return (uint32_t)ret;
    }
    if (req->gateway) {
        ret = strchr(req->gateway, ':') ? add_route6(ifname, req->addr, req->gateway)
                                        : add_route4(ifname, req->addr, req->mask, req->gateway);
    }
    return (uint32_t)ret;
}

void net_set_mtu(const char *ifname, int mtu) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    ifr.ifr_mtu = mtu;
    (void)sock_ioctl(AF_INET, SOCK_DGRAM, SIOCSIFMTU, &ifr); /* no such NIC: ignored, as upstream */
}
