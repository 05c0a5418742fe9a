/**
 * virtio-rng, the entropy device (VIRTIO 1.2 5.4, device id 4): one request queue of
 * device-writable buffers, which the device fills with random bytes. The guest's hw_random core
 * then feeds them to the kernel's entropy pool and exposes them as {@code /dev/hwrng}.
 */
package dev.jwsl.hypervisor.devices.virtio.rng;
