/* Host <-> guest init conventions for a one-command VM (jwsl-vmm).
 * The Java side is dev.jwsl.hypervisor.vmm.GuestCommand and devices.InitPort;
 * GuestCommandTest parses this file and checks the values agree. */
#ifndef JWSL_PROTOCOL_H
#define JWSL_PROTOCOL_H

/* Kernel parameters (they reach PID 1 as environment variables). */
#define JWSL_CMD_PARAM "jwsl_cmd"     /* argv, NUL-separated, base64url, no padding */
#define JWSL_STDIN_PARAM "jwsl_stdin" /* "tty" or "pipe" */
#define JWSL_TERM_PARAM "jwsl_term"   /* host TERM, tty mode only */
#define JWSL_WINSIZE_PARAM "jwsl_winsize" /* ROWSxCOLS of the host terminal, tty mode only */
#define JWSL_MODE_PARAM "jwsl_mode"   /* "relay": the utility VM, serving relay_protocol.h */
#define JWSL_MODE_RELAY "relay"

/* Console input framing in pipe mode: ESC ESC = literal 0xff, ESC EOF = end of input. */
#define JWSL_INPUT_ESCAPE 0xff
#define JWSL_INPUT_EOF 0x00

/* I/O ports the VMM watches (Java: devices.InitPort). A byte written to EXIT ends the VM with
 * that exit status; any write to READY says the console is set up and host input may flow. */
#define JWSL_INIT_PORT 0x5f0
#define JWSL_INIT_PORT_EXIT 0
#define JWSL_INIT_PORT_READY 1
/* A write latches the host's wall clock and fresh random bytes; each read returns the next
 * byte: "JWSL", le64 CLOCK_REALTIME seconds, le32 nanoseconds, 32 random bytes. Init reads it
 * right after READY, which is where a VM restored from a snapshot resumes (it steps the clock
 * and reseeds the kernel's RNG with it). Elsewhere (QEMU) the magic is missing and it is skipped. */
#define JWSL_INIT_PORT_HOST_DATA 2
#define JWSL_HOST_DATA_SIZE 48

#endif
