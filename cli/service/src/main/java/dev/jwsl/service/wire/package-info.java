/**
 * The client/service messages on a Netty pipeline: a decoder and an encoder around
 * {@link dev.jwsl.protocol.MessageCodec}, so the protocol module itself stays Netty-free.
 */
package dev.jwsl.service.wire;
