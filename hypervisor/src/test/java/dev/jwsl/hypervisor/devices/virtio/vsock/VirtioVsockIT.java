package dev.jwsl.hypervisor.devices.virtio.vsock;

import dev.jwsl.hypervisor.testutil.OneCommandVm;
import dev.jwsl.hypervisor.testutil.SuiteBuild;
import dev.jwsl.hypervisor.testutil.TestInitramfs;
import dev.jwsl.hypervisor.vmm.GuestCommand;
import dev.jwsl.hypervisor.vmm.KernelCmdline;
import dev.jwsl.hypervisor.vmm.StopReason;
import dev.jwsl.hypervisor.vmm.VmConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * virtio-vsock end to end with the real kernel's driver: a tiny static guest program
 * (src/test/c/vsock_probe.c, added to the initramfs by {@link TestInitramfs}) connects to a host Unix socket listener, then accepts a host-initiated
 * connection and echoes it. One boot. Skipped without the kernel/initramfs properties,
 * musl-gcc or cpio.
 */
class VirtioVsockIT {
    @TempDir
    Path dir;

    @Test
    @Timeout(600)
    void guestAndHostConnectBothWays() throws Exception {
        SuiteBuild build = SuiteBuild.require();
        Path initramfs = TestInitramfs.withProgram(dir, build.initrd(), "vsock_probe.c", "vsock-probe");

        Path uds = dir.resolve("v.sock");
        CompletableFuture<String> hostGot = new CompletableFuture<>();
        CompletableFuture<String> echoed = new CompletableFuture<>();
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(uds + "_1234"));
            Thread.ofPlatform().daemon().start(() -> serveOnce(server, hostGot));
            Thread.ofPlatform().daemon().start(() -> connectToGuest(uds, echoed));

            String cmdline = KernelCmdline.build("", GuestCommand.kernelParams(List.of("/bin/vsock-probe"), false, null));
            ByteArrayOutputStream console = new ByteArrayOutputStream();
            VmConfig config = new VmConfig(build.kernel(), initramfs, cmdline, 256L << 20, 1, console)
                    .withVsock(new VmConfig.Vsock(uds));
            StopReason reason = OneCommandVm.run(config);
            String out = console.toString(StandardCharsets.UTF_8);
            System.out.println("guest console:\n" + out);
            assertEquals(new StopReason.GuestExit(0), reason, out);
            assertTrue(out.contains("guest got: hi guest"), out);
            assertTrue(out.contains("echo done"), out);
            assertEquals("hello from guest\n", hostGot.get(5, TimeUnit.SECONDS));
            assertEquals("ping from host\n", echoed.get(5, TimeUnit.SECONDS));
        }
    }

    /** The host listener on port 1234: reads to end of stream, replies, closes. */
    private static void serveOnce(ServerSocketChannel server, CompletableFuture<String> got) {
        try (SocketChannel c = server.accept()) {
            got.complete(readAll(c));
            c.write(ByteBuffer.wrap("hi guest\n".getBytes(StandardCharsets.US_ASCII)));
        } catch (IOException e) {
            got.completeExceptionally(e);
        }
    }

    /** A host client for guest port 52, retried until the guest listens (a refusal closes without OK). */
    private static void connectToGuest(Path uds, CompletableFuture<String> echoed) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(300);
        while (System.nanoTime() < deadline) {
            try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(uds))) {
                c.write(ByteBuffer.wrap("CONNECT 52\n".getBytes(StandardCharsets.US_ASCII)));
                String ok = readLine(c);
                if (ok != null && ok.startsWith("OK ")) {
                    c.write(ByteBuffer.wrap("ping from host\n".getBytes(StandardCharsets.US_ASCII)));
                    c.shutdownOutput();
                    echoed.complete(readAll(c));
                    return;
                }
            } catch (IOException e) {
                // not listening yet
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                return;
            }
        }
        echoed.completeExceptionally(new AssertionError("guest port 52 never accepted"));
    }

    private static String readLine(SocketChannel c) throws IOException {
        ByteBuffer one = ByteBuffer.allocate(1);
        StringBuilder b = new StringBuilder();
        while (c.read(one.clear()) > 0) {
            if (one.get(0) == '\n') {
                return b.toString();
            }
            b.append((char) one.get(0));
        }
        return null;
    }

    private static String readAll(SocketChannel c) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer b = ByteBuffer.allocate(4096);
        while (c.read(b.clear()) > 0) {
            out.write(b.array(), 0, b.position());
        }
        return out.toString(StandardCharsets.US_ASCII);
    }
}
