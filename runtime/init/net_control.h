/* NET_CTL: what a provider's init does to its NICs when the requestor's network is joined
 * (ya-runtime-vm v0.5.2 init.c handle_net_ctl 1880-2041, network.c net_if_addr, net_route). */
#ifndef GVMI_NET_CONTROL_H
#define GVMI_NET_CONTROL_H

#include <stdint.h>

/* The provider's interfaces: eth0 is the VPN NIC, eth1 the outbound ("inet") NIC. */
#define NET_DEV_VPN "eth0"
#define NET_DEV_INET "eth1"
#define NET_MTU_VPN 1220
#define NET_MTU_INET 65521
#define NET_IF_INET 1 /* SUB_NET_CTL_IF: 0 vpn (and any other value), 1 inet */

/* One NET_CTL request's fields as NUL-terminated strings; NULL when absent (an empty ADDR or
 * MASK counts as absent, as upstream). */
struct net_ctl {
    const char *addr, *mask, *gateway, *if_addr;
    uint16_t if_kind;
};

/* Upstream's effect and answer: with IF_ADDR, the address (an alias when the interface already
 * has one), the interface up, its MAC set to 90:13:<the address's last 4 bytes>; with GATEWAY, a
 * route to ADDR/MASK (default route when absent) via it. Returns 0 (OK) or the number upstream
 * sends as its ERR code: EINVAL for an IPv4 address without a mask, else an ioctl's -1
 * (0xffffffff on the wire: no such NIC, a route the kernel refuses). */
uint32_t net_control(const struct net_ctl *req);

/* Sets an interface's MTU at boot, ignoring failure (a NIC that is not there), as upstream. */
void net_set_mtu(const char *ifname, int mtu);

#endif
