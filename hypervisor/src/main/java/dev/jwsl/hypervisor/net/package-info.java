/**
 * User-mode networking for the virtio-net device: the guest's addresses and DNS
 * ({@link dev.jwsl.hypervisor.net.NetConfig}), the backend contract ({@link dev.jwsl.hypervisor.net.NetBackend}),
 * frame helpers and the host-name responder. Reached only by {@code devices.virtio.net}
 * (NetConfig, a value, also by {@code vmm}).
 */
package dev.jwsl.hypervisor.net;
