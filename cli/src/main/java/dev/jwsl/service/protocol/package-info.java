/**
 * The client/service protocol: {@link dev.jwsl.service.protocol.JwslMessage} types, a
 * transport-neutral {@link dev.jwsl.service.protocol.MessageCodec}, and Netty's
 * decoder/encoder pair for the service side (the client stays Netty-free for start-up time).
 */
package dev.jwsl.service.protocol;
