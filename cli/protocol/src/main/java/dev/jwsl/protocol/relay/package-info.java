/**
 * The command relay with guest init (guest-init/protocol/relay_protocol.h): frames, the CREATE
 * request, a client session over the utility VM's hybrid vsock, and the host terminal a session
 * puts in raw mode. Used by the wsl client (commands) and the service (its own guest shells).
 */
package dev.jwsl.protocol.relay;
