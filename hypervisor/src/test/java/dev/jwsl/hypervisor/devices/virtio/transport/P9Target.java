package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.devices.virtio.p9.P9Device;
import dev.jwsl.hypervisor.devices.virtio.p9.VirtqueueP9Transport;
import dev.jwsl.hypervisor.p9.P9Client;
import dev.jwsl.hypervisor.p9.P9Server;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static dev.jwsl.hypervisor.devices.virtio.transport.FuzzTarget.bytes;
import static dev.jwsl.hypervisor.devices.virtio.transport.FuzzTarget.pick;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * virtio-9p over a temporary share: 9P2000.L requests on a few fids and names, so that fids are
 * really attached, walked, opened and clunked, with a malformed message now and then.
 */
record P9Target(P9Device device, P9Server server, P9Client encoder) implements FuzzTarget {
    // 9P2000.L message types (Linux include/net/9p/9p.h).
    private static final int TSTATFS = 8, TLOPEN = 12, TLCREATE = 14, TGETATTR = 24, TXATTRWALK = 30, TREADDIR = 40,
            TFSYNC = 50, TMKDIR = 72, TRENAMEAT = 74, TUNLINKAT = 76, TVERSION = 100, TATTACH = 104, TFLUSH = 108,
            TWALK = 110, TREAD = 116, TWRITE = 118, TCLUNK = 120;
    private static final int[] TYPES = {TVERSION, TATTACH, TATTACH, TWALK, TWALK, TWALK, TLOPEN, TLOPEN, TLCREATE,
            TREAD, TREAD, TWRITE, TWRITE, TCLUNK, TCLUNK, TGETATTR, TREADDIR, TMKDIR, TUNLINKAT, TFLUSH, TXATTRWALK,
            TSTATFS, TFSYNC, TRENAMEAT, 0};
    private static final String[] NAMES = {"f", "f", "d", "new", "..", ".", "", "x/y", "n".repeat(300)};

    static P9Target in(Path dir) {
        try {
            Path share = Files.createDirectories(dir.resolve("share"));
            Files.createDirectories(share.resolve("d"));
            Files.writeString(share.resolve("f"), "data");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        P9Server server = new P9Server(Map.of("share", dir.resolve("share")), 2);
        return new P9Target(new P9Device("share", server), server, new P9Client(request -> {
            throw new AssertionError("the encoder sends nothing");
        }));
    }

    @Override
    public List<Seg> request(int queue, Random rnd) {
        byte[] m = message(rnd).encode();
        switch (rnd.nextInt(24)) {
            case 0 -> m[rnd.nextInt(m.length)] ^= (byte) (1 << rnd.nextInt(8));
            case 1 -> m = java.util.Arrays.copyOf(m, rnd.nextInt(m.length));
            case 2 -> m = bytes(rnd, rnd.nextInt(40));
            default -> { }
        }
        List<Seg> segs = new ArrayList<>(FuzzTarget.readable(rnd, m));
        segs.add(Seg.writable(pick(rnd, 0, 7, 11, 64, 4096, 4096, 65536)));
        return segs;
    }

    private P9Client.Request message(Random rnd) {
        int fid = rnd.nextInt(8);
        int other = rnd.nextInt(8);
        String name = NAMES[rnd.nextInt(NAMES.length)];
        int type = TYPES[rnd.nextInt(TYPES.length)];
        P9Client.Request r = encoder.request(type == 0 ? rnd.nextInt(256) : type);
        return switch (type) {
            case TVERSION -> r.u32(pick(rnd, 8192, 65536, 4095, -1)).str(rnd.nextInt(8) == 0 ? "9P2000" : "9P2000.L");
            case TATTACH -> r.u32(fid).u32(-1).str("user").str(pick(rnd, 0, 1) == 0 ? "" : "elsewhere").u32(pick(rnd, 0, 1000, -1));
            case TWALK -> {
                int n = pick(rnd, 0, 1, 1, 2, 17);
                r.u32(fid).u32(other).u16(n);
                for (int i = 0; i < n; i++) {
                    r.str(NAMES[rnd.nextInt(NAMES.length)]);
                }
                yield r;
            }
            case TLOPEN -> r.u32(fid).u32(pick(rnd, 0, 1, 2, 0x242, 0x10000, rnd.nextInt()));
            case TLCREATE -> r.u32(fid).str(name).u32(pick(rnd, 0x42, 0xc2, 0x241)).u32(0644).u32(0);
            case TREAD -> r.u32(fid).u64(pick(rnd, 0, 4096, 1 << 20, -1)).u32(pick(rnd, 0, 100, 8192, 1 << 20, -1));
            case TWRITE -> {
                byte[] data = bytes(rnd, pick(rnd, 0, 10, 4096));
                yield r.u32(fid).u64(rnd.nextInt(1 << 20)).u32(rnd.nextInt(8) == 0 ? rnd.nextInt() : data.length).bytes(data);
            }
            case TCLUNK, TSTATFS -> r.u32(fid);
            case TGETATTR -> r.u32(fid).u64(0x3fff);
            case TREADDIR -> r.u32(fid).u64(0).u32(pick(rnd, 100, 8192));
            case TMKDIR -> r.u32(fid).str(name).u32(0755).u32(0);
            case TUNLINKAT -> r.u32(fid).str(name).u32(pick(rnd, 0, 0x200));
            case TFLUSH -> r.u16(rnd.nextInt(0x8000));
            case TXATTRWALK -> r.u32(fid).u32(other).str(pick(rnd, 0, 1) == 0 ? "" : "user.x");
            case TFSYNC -> r.u32(fid).u32(0);
            case TRENAMEAT -> r.u32(fid).str(name).u32(other).str(NAMES[rnd.nextInt(NAMES.length)]);
            default -> r.bytes(bytes(rnd, rnd.nextInt(32)));
        };
    }

    /** Tversion and Tattach answer, and no request so far ended in an unexpected exception. */
    @Override
    public void checkWorks(VirtioDriver driver, List<MockQueue> rings) {
        P9Client c = new P9Client(new VirtqueueP9Transport(driver, rings.getFirst(), 8192));
        assertEquals(8192, c.version(8192));
        c.attach(1, "", 0);
        c.walk(1, 2);
        assertEquals(0, server.internalErrors(), "9P requests that failed with an unexpected exception");
    }

    @Override
    public void close() {
        device.close();
    }
}
