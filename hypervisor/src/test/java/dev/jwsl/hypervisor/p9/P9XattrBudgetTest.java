package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.Map;
import java.util.concurrent.Executors;

import static dev.jwsl.hypervisor.p9.P9SessionTest.errno;
import static org.junit.jupiter.api.Assertions.*;

/**
 * xattr values wait in the heap between requests; a connection may hold 1 MiB of them, and gets
 * it back when the fid goes, however it goes (issue 16, findings 5 and 12: 4096 pending 64 KiB
 * Txattrcreate values filled a 256 MiB heap).
 */
class P9XattrBudgetTest {
    static final int ROOT = 1, MAX_VALUE = 65536, BUDGET = 1 << 20;

    @TempDir
    Path dir;
    Served served;
    P9Session session;
    P9Client c;

    @BeforeEach
    void start() throws IOException {
        Path share = Files.createDirectory(dir.resolve("share"));
        Files.writeString(share.resolve("f"), "x");
        Files.getFileAttributeView(share.resolve("f"), UserDefinedFileAttributeView.class)
                .write("big", ByteBuffer.wrap(new byte[3000]));
        served = Served.of(() -> new P9Server(Map.of("s", share), Executors.newSingleThreadExecutor(), P9Server.DEFAULT_MAX_FIDS, 1));
        session = served.session();
        c = served.client();
        c.attach(ROOT, "", 0);
    }

    @AfterEach
    void stop() throws IOException {
        served.close();
        assertEquals(0, session.xattrBytes(), "a closed connection holds no xattr value");
    }

    /** Pending Txattrcreate values of 64 KiB until the connection's bound; the count that fit. */
    private int fillWithPendingCreates(int firstFid) {
        for (int i = 0; ; i++) {
            c.walk(ROOT, firstFid + i, "f");
            try {
                c.xattrcreate(firstFid + i, "user.v", MAX_VALUE, 0);
            } catch (P9Error e) {
                assertEquals(Errno.ENOSPC, e.errno(), "past the bound: " + e.getMessage());
                c.clunk(firstFid + i);
                return i;
            }
            assertTrue(i < 1000, "no bound on pending xattr values");
        }
    }

    @Test
    void pendingCreatesAreBoundedAndGivenBackHoweverTheFidGoes() {
        assertEquals(BUDGET / MAX_VALUE, fillWithPendingCreates(100));
        assertEquals(BUDGET, session.xattrBytes());

        // clunk of a value never written: the set fails, the heap comes back
        assertEquals(Errno.EINVAL, errno(() -> c.clunk(100)));
        c.walk(ROOT, 2, "f");
        c.xattrcreate(2, "user.v", MAX_VALUE, 0);
        // a Twrite that fails, then the clunk
        assertEquals(Errno.EINVAL, errno(() -> c.write(2, 5, new byte[1])));
        assertEquals(Errno.EINVAL, errno(() -> c.clunk(2)));
        // a value written and set
        c.walk(ROOT, 3, "f");
        c.xattrcreate(3, "user.small", 4, 0);
        assertEquals(Errno.ENOSPC, errno(() -> {
            c.walk(ROOT, 4, "f");
            c.xattrcreate(4, "user.v", MAX_VALUE, 0);
        }));
        c.clunk(4);
        c.write(3, 0, "abcd".getBytes());
        c.clunk(3);
        assertEquals(BUDGET - MAX_VALUE, session.xattrBytes());
        // Txattrwalk onto its own fid number replaces (and releases) the pending fid
        c.xattrwalk(101, 101, "user.small");
        assertEquals(BUDGET - 2 * MAX_VALUE + 4, session.xattrBytes());

        c.version(1 << 16); // drops every fid
        assertEquals(0, session.xattrBytes());
        c.attach(ROOT, "", 0);
        assertEquals(BUDGET / MAX_VALUE, fillWithPendingCreates(100), "all of it back");
    }

    @Test
    void valuesWaitingForTreadAreBounded() {
        c.walk(ROOT, 2, "f");
        int fit = 0;
        for (; fit < 1000; fit++) {
            try {
                assertEquals(3000, c.xattrwalk(2, 100 + fit, "user.big"));
            } catch (P9Error e) {
                assertEquals(Errno.ENOMEM, e.errno());
                break;
            }
        }
        assertEquals(BUDGET / 3000, fit);
        c.clunk(100);
        assertEquals(3000, c.xattrwalk(2, 100, "user.big"), "a clunk gives the value's room back");
        assertEquals(3000, c.read(100, 0, 4000).length);
    }
}
