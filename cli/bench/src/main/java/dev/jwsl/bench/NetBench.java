package dev.jwsl.bench;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The host's half of scripts/bench-net; the guest's is scripts/netbench.c, with the same
 * protocol and the same modes (see there):
 * {@code serve ADDRESS PORT}, {@code send|recv HOST PORT MIB}, {@code ping HOST PORT N}.
 * Clients print MB/s or ms per connection, measured here.
 */
public final class NetBench {
    private static final byte[] BUF = new byte[1 << 16];

    private NetBench() {}

    public static void main(String[] args) throws IOException {
        if (args.length == 3 && args[0].equals("serve")) {
            serve(InetAddress.getByName(args[1]), Integer.parseInt(args[2]));
            return;
        }
        if (args.length != 4) {
            System.err.println("usage: NetBench serve ADDRESS PORT | send|recv HOST PORT MIB | ping HOST PORT N");
            System.exit(2);
        }
        InetAddress host = InetAddress.getByName(args[1]);
        int port = Integer.parseInt(args[2]);
        long n = Long.parseLong(args[3]);
        long bytes = n << 20;
        long t0 = System.nanoTime();
        switch (args[0]) {
            case "send" -> {
                try (Socket s = dial(host, port)) {
                    OutputStream o = s.getOutputStream();
                    o.write('u');
                    blast(o, bytes);
                    s.shutdownOutput();
                    byte[] count = s.getInputStream().readNBytes(8);
                    long got = count.length == 8 ? ByteBuffer.wrap(count).order(ByteOrder.LITTLE_ENDIAN).getLong() : -1;
                    check(got == bytes, "the server got " + got + " of " + bytes + " bytes");
                }
                System.out.printf("%.3f%n", bytes / 1e6 / seconds(t0));
            }
            case "recv" -> {
                try (Socket s = dial(host, port)) {
                    OutputStream o = s.getOutputStream();
                    o.write(ByteBuffer.allocate(9).order(ByteOrder.LITTLE_ENDIAN).put((byte) 'd').putLong(bytes).array());
                    long got = drain(s.getInputStream());
                    check(got == bytes, "received " + got + " of " + bytes + " bytes");
                }
                System.out.printf("%.3f%n", bytes / 1e6 / seconds(t0));
            }
            case "ping" -> {
                for (long i = 0; i < n; i++) {
                    try (Socket s = dial(host, port)) {
                        s.getOutputStream().write('p');
                        check(s.getInputStream().read() == 'p', "ping " + i + " failed");
                    }
                }
                System.out.printf("%.3f%n", seconds(t0) * 1000 / n);
            }
            default -> {
                System.err.println("NetBench: unknown mode " + args[0]);
                System.exit(2);
            }
        }
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            System.err.println("NetBench: " + message);
            System.exit(1);
        }
    }

    private static double seconds(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }

    private static Socket dial(InetAddress host, int port) throws IOException {
        Socket s = new Socket();
        s.setTcpNoDelay(true);
        s.setSoTimeout(600_000);
        s.connect(new InetSocketAddress(host, port), 60_000);
        return s;
    }

    private static void blast(OutputStream o, long n) throws IOException {
        while (n > 0) {
            int k = (int) Math.min(n, BUF.length);
            o.write(BUF, 0, k);
            n -= k;
        }
    }

    private static long drain(InputStream in) throws IOException {
        long total = 0;
        for (int r; (r = in.read(BUF)) > 0; ) {
            total += r;
        }
        return total;
    }

    /** One connection at a time, as the guest's server. */
    private static void serve(InetAddress address, int port) throws IOException {
        try (ServerSocket l = new ServerSocket()) {
            l.setReuseAddress(true);
            l.bind(new InetSocketAddress(address, port), 64);
            for (;;) {
                try (Socket c = l.accept()) {
                    c.setTcpNoDelay(true);
                    InputStream in = c.getInputStream();
                    OutputStream out = c.getOutputStream();
                    switch (in.read()) {
                        case 'u' -> out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(drain(in)).array());
                        case 'd' -> {
                            byte[] n = in.readNBytes(8);
                            if (n.length == 8) {
                                blast(out, ByteBuffer.wrap(n).order(ByteOrder.LITTLE_ENDIAN).getLong());
                            }
                        }
                        case 'p' -> out.write('p');
                        case 'q' -> {
                            return;
                        }
                        default -> { }
                    }
                } catch (IOException e) {
                    // one client's trouble: serve the next
                }
            }
        }
    }
}
