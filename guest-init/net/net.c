/* Network configuration of the utility VM, without netlink or DHCP: a handful of ioctls on fixed
 * addresses the VMM passes on the command line, so the guest is on the network as soon as init
 * runs, with or without a network on the host. Router advertisements and duplicate address
 * detection are off on eth0: the addresses are fixed and DAD would hold IPv6 back a second. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net.h"

#define IFACE "eth0"

/* struct in6_ifreq (linux/ipv6.h), not in musl's headers. */
struct jwsl_in6_ifreq {
    struct in6_addr addr;
    unsigned int prefixlen;
    int ifindex;
};

struct net_params {
    struct in_addr addr4, gw4, dns4;
    struct in6_addr addr6, gw6, dns6;
    int prefix4, prefix6, mtu;
    char gw4_text[INET_ADDRSTRLEN], gw6_text[INET6_ADDRSTRLEN];
    char dns4_text[INET_ADDRSTRLEN], dns6_text[INET6_ADDRSTRLEN];
};

static void say(const char *what, const char *arg)
{
    dprintf(2, "jwsl-init: network: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
}

static int parse_prefixed(char *s, int family, void *addr, int *prefix, int max)
{
    char *slash = strchr(s, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (*end || p < 0 || p > max)
        return -1;
    *prefix = (int)p;
    return inet_pton(family, s, addr) == 1 ? 0 : -1;
}

static int parse(const char *param, struct net_params *n)
{
    char buf[512], *field[7];
    if (strlen(param) >= sizeof(buf))
        return -1;
    strcpy(buf, param);
    char *p = buf;
    for (int i = 0; i < 7; i++) {
        field[i] = strsep(&p, ",");
        if (!field[i])
            return -1;
    }
    if (p)
        return -1;
    char *end;
    long mtu = strtol(field[6], &end, 10);
    if (*end || mtu < 1280 || mtu > 65535)
        return -1;
    n->mtu = (int)mtu;
    if (parse_prefixed(field[0], AF_INET, &n->addr4, &n->prefix4, 32) != 0 ||
        inet_pton(AF_INET, field[1], &n->gw4) != 1 || inet_pton(AF_INET, field[2], &n->dns4) != 1 ||
        parse_prefixed(field[3], AF_INET6, &n->addr6, &n->prefix6, 128) != 0 ||
        inet_pton(AF_INET6, field[4], &n->gw6) != 1 || inet_pton(AF_INET6, field[5], &n->dns6) != 1)
        return -1;
    inet_ntop(AF_INET, &n->gw4, n->gw4_text, sizeof(n->gw4_text));
    inet_ntop(AF_INET6, &n->gw6, n->gw6_text, sizeof(n->gw6_text));
    inet_ntop(AF_INET, &n->dns4, n->dns4_text, sizeof(n->dns4_text));
    inet_ntop(AF_INET6, &n->dns6, n->dns6_text, sizeof(n->dns6_text));
    return 0;
}

static void link_up(int fd, const char *name)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
        say("no interface", name);
        return;
    }
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
        say("cannot bring up", name);
}

static void sysctl_write(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, value, strlen(value)) < 0)
        say("cannot set", path);
    if (fd >= 0)
        close(fd);
}

static int write_file(const char *path, const char *text)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void configure_v4(const struct net_params *n)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        say("socket", "AF_INET");
        return;
    }
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), IFACE);
    ifr.ifr_mtu = n->mtu;
    if (ioctl(fd, SIOCSIFMTU, &ifr) != 0)
        say("cannot set the MTU of", IFACE);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    memset(&ifr.ifr_addr, 0, sizeof(ifr.ifr_addr));
    sin->sin_family = AF_INET;
    sin->sin_addr = n->addr4;
    if (ioctl(fd, SIOCSIFADDR, &ifr) != 0)
        say("cannot set the IPv4 address of", IFACE);
    sin->sin_addr.s_addr = n->prefix4 ? htonl(0xffffffffu << (32 - n->prefix4)) : 0;
    if (ioctl(fd, SIOCSIFNETMASK, &ifr) != 0)
        say("cannot set the netmask of", IFACE);
    link_up(fd, IFACE);
    struct rtentry rt = {0};
    ((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
    ((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
    struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
    gw->sin_family = AF_INET;
    gw->sin_addr = n->gw4;
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    if (ioctl(fd, SIOCADDRT, &rt) != 0 && errno != EEXIST)
        say("cannot add the IPv4 default route via", n->gw4_text);
    close(fd);
}

static void configure_v6(const struct net_params *n)
{
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        say("socket", "AF_INET6");
        return;
    }
    int index = (int)if_nametoindex(IFACE);
    struct jwsl_in6_ifreq ifr6 = {.addr = n->addr6, .prefixlen = (unsigned)n->prefix6, .ifindex = index};
    if (ioctl(fd, SIOCSIFADDR, &ifr6) != 0 && errno != EEXIST)
        say("cannot set the IPv6 address of", IFACE);
    struct in6_rtmsg rt = {0};
    rt.rtmsg_gateway = n->gw6;
    rt.rtmsg_flags = RTF_UP | RTF_GATEWAY;
    rt.rtmsg_metric = 1;
    rt.rtmsg_ifindex = index;
    if (ioctl(fd, SIOCADDRT, &rt) != 0 && errno != EEXIST)
        say("cannot add the IPv6 default route via", n->gw6_text);
    close(fd);
}

void net_setup(const char *param)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        link_up(fd, "lo");
        close(fd);
    }
    if (!param || !*param)
        return;
    struct net_params n;
    if (parse(param, &n) != 0) {
        errno = EINVAL;
        say("malformed " JWSL_NET_PARAM, param);
        return;
    }
    sysctl_write("/proc/sys/net/ipv6/conf/" IFACE "/accept_dad", "0");
    sysctl_write("/proc/sys/net/ipv6/conf/" IFACE "/accept_ra", "0");
    sysctl_write("/proc/sys/net/ipv6/conf/" IFACE "/autoconf", "0");
    configure_v4(&n);
    configure_v6(&n);

    char resolv[512], hosts[512];
    snprintf(resolv, sizeof(resolv),
             "# Generated by jwsl ([network] generateResolvConf = false in /etc/wsl.conf stops it)\n"
             "nameserver %s\nnameserver %s\n", n.dns4_text, n.dns6_text);
    snprintf(hosts, sizeof(hosts), "%s\t" JWSL_HOST_NAME "\n%s\t" JWSL_HOST_NAME "\n", n.gw4_text, n.gw6_text);
    mkdir("/run", 0755);
    mkdir("/run/jwsl", 0755);
    if (write_file(JWSL_NET_RESOLV, resolv) != 0 || write_file(JWSL_NET_HOSTS, hosts) != 0 ||
        write_file("/etc/resolv.conf", resolv) != 0)
        say("cannot write", "the resolver configuration");
    char vm_hosts[1024];
    snprintf(vm_hosts, sizeof(vm_hosts), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s", hosts);
    if (write_file("/etc/hosts", vm_hosts) != 0)
        say("cannot write", "/etc/hosts");
}
