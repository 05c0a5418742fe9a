/**
 * Host folders for the guest: the 9P server ({@code dev.jwsl.hypervisor.p9}) on stream sockets
 * with Netty — Unix and TCP listeners for {@code jwsl-9p} and the host side of 9P over vsock
 * (the VMM's hybrid vsock turns a guest connection to port 564 into a connection to
 * {@code <vsock socket>_564}).
 */
package dev.jwsl.service.share;
