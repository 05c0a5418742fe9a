/* The service protocol between a `wsl` client and the user's jwsl service, over the service's
 * Unix socket ($XDG_RUNTIME_DIR/jwsl/service.sock). The Java side is dev.jwsl.protocol.JwslMessage
 * and MessageCodec; ProtocolConstantsTest parses this file and checks the values agree. This
 * header serves the native client (cli/client/src/main/c/wsl_native.c), which speaks the few
 * messages of a warm call: ENSURE_VM, STATUS and their answers.
 *
 * Every message is a frame: a 16-byte header, little-endian
 *     u16 type, u16 flags (0), u32 payload length, u64 transaction id
 * then the payload; strings are u32 length + UTF-8. A response carries its request's transaction
 * id; long operations send PROGRESS frames before the final response.
 */
#ifndef JWSL_SERVICE_PROTOCOL_H
#define JWSL_SERVICE_PROTOCOL_H

#define JWSL_SERVICE_HEADER_SIZE 16
#define JWSL_SERVICE_MAX_PAYLOAD 65536

#define JWSL_SERVICE_ENSURE_VM 1    /* string distro ("" = default), u8 system */
#define JWSL_SERVICE_VM_READY 2     /* string vsock socket, u32 relay port, string distro, string default user */
#define JWSL_SERVICE_STATUS 3       /* no payload */
#define JWSL_SERVICE_STATUS_REPLY 4 /* string VM state, u32 sessions, u64 uptime ms, u64 idle timeout ms,
                                       string kernel */
#define JWSL_SERVICE_ERROR 7        /* string message: one line for the user */
#define JWSL_SERVICE_PROGRESS 17    /* string phase, u64 done, u64 total */

#endif
