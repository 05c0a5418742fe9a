/** Legacy PC devices: {@link dev.jwsl.hypervisor.devices.legacy.Uart8250} and the i8042 reset line. */
package dev.jwsl.hypervisor.devices.legacy;
