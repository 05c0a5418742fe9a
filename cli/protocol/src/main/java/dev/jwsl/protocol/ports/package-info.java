/**
 * The localhost-forwarding protocol with the guest's jwsl-ports
 * (guest-init/protocol/ports_protocol.h); {@code PortsConstantsTest} checks the two agree.
 */
package dev.jwsl.protocol.ports;
