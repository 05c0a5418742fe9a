/**
 * A 9P2000.L file server: host directories served to a guest kernel's v9fs client, after
 * WSL's plan9 server and QEMU's virtio-9p. Transport-independent: a transport hands each
 * request's bytes and a reply buffer (as {@link dev.jwsl.hypervisor.p9.Scatter}) to a
 * {@link dev.jwsl.hypervisor.p9.P9Session}; the virtio-9p device and the socket listeners in the
 * service are such transports.
 *
 * <p>Confinement: every fid holds an {@code O_PATH} descriptor; a walk opens one name at a time
 * relative to it with {@code openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)} and
 * {@code O_NOFOLLOW}, so the server never follows a symlink (the client resolves them itself) and
 * a name can never leave its directory. {@code ..} is opened again from the share root, a fid
 * whose file has moved out of its share resolves nothing more, and no request joins two shares:
 * {@link dev.jwsl.hypervisor.p9.Confinement} holds these rules, and every name goes through it.
 * Run by a user, the server has no privilege beyond that user's; run as root, it serves each
 * request as the user who attached ({@code Credentials}), and so the host
 * kernel decides every access as for that user's own process.
 *
 * <p>{@link dev.jwsl.hypervisor.p9.P9Session} frames and dispatches a connection's requests to
 * one class per family ({@code WalkRequests}, {@code AttrRequests}, {@code DirRequests},
 * {@code FileRequests}, {@code XattrRequests}, {@code LockRequests}, {@code LinkRequests}).
 *
 * <p>Protocol: <a href="https://github.com/chaos/diod/blob/master/protocol.md">9P2000.L</a> and
 * the Linux client in {@code net/9p} and {@code fs/9p}.
 */
package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.memory.Scatter;