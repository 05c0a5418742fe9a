/**
 * The libslirp backend through FFM: NAT to the host's network, run on one thread of its own.
 */
package dev.jwsl.hypervisor.net.slirp;
