/**
 * Stand-alone programs on the VMM: {@code jwsl-vmm} (boot the jwsl kernel and run one command,
 * console on the host terminal) and {@code jwsl-9p} (serve host directories over 9P on a socket).
 */
package dev.jwsl.service.tools;
