/**
 * What the wsl client and the service agree on, and nothing else (no dependencies, so the
 * client's class path stays small): the client/service messages ({@link dev.jwsl.protocol.JwslMessage},
 * a sealed interface, and the transport-neutral {@link dev.jwsl.protocol.MessageCodec}), where a
 * user's service lives ({@link dev.jwsl.protocol.ServicePaths}) and sizes as users write them.
 * The guest-facing protocols are in {@code relay} and {@code ports}.
 */
package dev.jwsl.protocol;
