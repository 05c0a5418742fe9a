/**
 * Virtio devices, one package each ({@code rng}, {@code vsock}), after Firecracker's
 * devices/virtio. A device implements {@link dev.jwsl.hypervisor.virtio.VirtioDevice} and sees
 * only its queues, guest memory and a {@link dev.jwsl.hypervisor.virtio.VirtioInterrupt}; the
 * transport and KVM wiring live in {@code virtio.transport} and {@code vmm.VmBuilder}.
 */
package dev.jwsl.hypervisor.devices.virtio;
