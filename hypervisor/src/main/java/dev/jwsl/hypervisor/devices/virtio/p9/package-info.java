/**
 * virtio-9p (VIRTIO 1.2 section 5.14, "9P transport"): one request queue; each buffer is a whole
 * 9P request (device-readable) followed by room for the reply (device-writable). The device
 * hands both to a {@link dev.jwsl.hypervisor.p9.P9Session} as guest-memory segments, so file
 * data moves between the host file and guest RAM with no copy, including the Linux client's
 * zero-copy reads and writes (header in the first buffer, user pages after it).
 */
package dev.jwsl.hypervisor.devices.virtio.p9;
