/**
 * Emulated devices and the two buses the vCPU threads dispatch to: {@link dev.jwsl.hypervisor.devices.IoBus}
 * (x86 port I/O) and {@link dev.jwsl.hypervisor.devices.MmioBus} (MMIO exits in the 32-bit gap).
 * {@code devices.legacy} holds the PC devices a Linux guest expects (16550A UART, i8042 reset);
 * the in-kernel KVM irqchip and PIT cover the rest. {@code devices.virtio} holds one package per
 * virtio device, each behind a {@code devices.virtio.transport.MmioTransport}. Each device sees only its
 * registers (or queues) and an interrupt callback, never the vCPU or KVM.
 */
package dev.jwsl.hypervisor.devices;
