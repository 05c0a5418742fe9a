/**
 * Emulated devices and the port I/O bus. {@code devices.legacy} holds the PC devices a Linux guest
 * expects (16550A UART, i8042 reset); the in-kernel KVM irqchip and PIT cover the rest. Each device
 * sees only its registers and an interrupt callback, never the vCPU or KVM.
 */
package dev.jwsl.hypervisor.devices;
