/* The utility VM's network: loopback always, and the virtio-net interface the VMM describes. */
#ifndef JWSL_NET_H
#define JWSL_NET_H

#include <stddef.h>

/* Kernel parameter the VMM adds with a network device (Java: dev.jwsl.hypervisor.net.NetConfig):
 * "ADDR4/PREFIX,GATEWAY4,DNS4,ADDR6/PREFIX,GATEWAY6,DNS6,MTU". The gateways are the host. */
#define JWSL_NET_PARAM "jwsl_net"
#define JWSL_HOST_NAME "host.internal"
/* What the utility VM knows about the network, for distro starts: resolv.conf and hosts lines. */
#define JWSL_NET_RESOLV "/run/jwsl/resolv.conf"
#define JWSL_NET_HOSTS "/run/jwsl/hosts"

/* Brings lo up; with param (may be NULL), configures eth0 and writes /etc/resolv.conf,
 * /etc/hosts and the two files above. Problems are logged, never fatal: the VM must boot. */
void net_setup(const char *param);

#endif
