/**
 * Virtio 1.2 device plumbing, after rust-vmm's virtio-queue and Firecracker's devices/virtio:
 * split virtqueues ({@link dev.jwsl.hypervisor.virtio.Queue},
 * {@link dev.jwsl.hypervisor.virtio.DescriptorChain}), the device contract
 * ({@link dev.jwsl.hypervisor.virtio.VirtioDevice}, {@link dev.jwsl.hypervisor.virtio.VirtioInterrupt})
 * (the virtio-mmio register file is {@code devices.virtio.transport}, as it sits on the MMIO bus). Spec:
 * https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html (2.7 split virtqueues,
 * 4.2 virtio over MMIO).
 *
 * <p>The driver is untrusted. Every ring index, descriptor index, length and address comes from
 * guest memory and is checked here: a malformed chain becomes a {@link dev.jwsl.hypervisor.virtio.QueueException}
 * (never an index or memory error escaping to the vCPU thread), after which the transport marks
 * the device DEVICE_NEEDS_RESET and stops serving the queue. All guest-memory access goes through
 * {@link dev.jwsl.hypervisor.memory.GuestMemory}.
 */
package dev.jwsl.hypervisor.virtio;
