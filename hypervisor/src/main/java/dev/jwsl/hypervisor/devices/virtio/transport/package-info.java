/**
 * Virtio transports. {@link dev.jwsl.hypervisor.devices.virtio.transport.MmioTransport} is virtio over
 * MMIO, version 2 only (VIRTIO 1.2 section 4.2): a 4 KiB register window per device, declared to
 * the guest with {@code virtio_mmio.device=4K@ADDR:IRQ} on the kernel command line, interrupts
 * through an irqfd and queue notifications through per-queue KVM ioeventfds.
 */
package dev.jwsl.hypervisor.devices.virtio.transport;
