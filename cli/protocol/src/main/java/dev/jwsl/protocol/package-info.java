/**
 * The client/service protocol: {@link dev.jwsl.protocol.JwslMessage} types, a
 * transport-neutral {@link dev.jwsl.protocol.MessageCodec}, and Netty's
 * decoder/encoder pair for the service side (the client stays Netty-free for start-up time).
 */
package dev.jwsl.protocol;
