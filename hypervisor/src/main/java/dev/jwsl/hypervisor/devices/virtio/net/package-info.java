/**
 * virtio-net (VIRTIO 1.2 section 5.1): one rx and one tx queue, with checksum offload, in front of
 * a {@link dev.jwsl.hypervisor.net.NetBackend}.
 */
package dev.jwsl.hypervisor.devices.virtio.net;
