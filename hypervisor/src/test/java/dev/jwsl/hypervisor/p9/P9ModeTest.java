package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Downcall;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.jwsl.hypervisor.p9.P9SessionTest.O_CREAT;
import static dev.jwsl.hypervisor.p9.P9SessionTest.RDWR;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A new file has exactly the mode the client asked, whatever the server's umask (the client has
 * applied its own), setuid and setgid included (issue 16, finding 15: started with umask 022,
 * 0620 came out 0600 and 04777 came out 0755).
 */
class P9ModeTest {
    static final int ROOT = 1, S_IFIFO = 0010000;
    private static final MethodHandle UMASK = Downcall.plain("umask", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

    @TempDir
    Path dir;
    Path share;
    Served served;
    P9Client c;
    int umaskBefore;

    static int umask(int mask) throws Throwable {
        return (int) UMASK.invokeExact(mask);
    }

    @BeforeEach
    void start() throws Throwable {
        umaskBefore = umask(022);
        share = Files.createDirectory(dir.resolve("share"));
        served = Served.attached(share);
        c = served.client();
    }

    @AfterEach
    void stop() throws Throwable {
        served.close();
        umask(umaskBefore);
    }

    int mode(String name) throws IOException {
        return (int) Files.getAttribute(share.resolve(name), "unix:mode") & 07777;
    }

    @Test
    void theServersUmaskIsNotApplied() throws IOException {
        c.walk(ROOT, 2);
        c.lcreate(2, "f", RDWR | O_CREAT, 0620);
        c.walk(ROOT, 3);
        c.lcreate(3, "all", RDWR | O_CREAT, 0777);
        c.mkdir(ROOT, "d", 0777);
        c.mkdir(ROOT, "sticky", 01777);
        c.mknod(ROOT, "fifo", S_IFIFO | 0666, 0, 0, -1);
        assertEquals(0620, mode("f"));
        assertEquals(0777, mode("all"));
        assertEquals(0777, mode("d"));
        assertEquals(01777, mode("sticky"));
        assertEquals(0666, mode("fifo"));
        c.walk(ROOT, 4);
        c.lcreate(4, "kept", RDWR | O_CREAT, 0600);
        assertEquals(0600, mode("kept"), "nothing wider than asked either");
    }

    @Test
    void setuidAndSetgidSurviveTheGroupChange() throws IOException {
        assumeTrue(HostFs.geteuid() == 0, "giving a file group 100 needs a root server");
        c.walk(ROOT, 2);
        c.lcreate(2, "suid", RDWR | O_CREAT, 06755, 100);
        c.walk(ROOT, 3);
        c.lcreate(3, "plain", RDWR | O_CREAT, 04777, -1);
        c.mkdir(ROOT, "sgid", 02777, 100);
        assertEquals(06755, mode("suid"));
        assertEquals(100, Files.getAttribute(share.resolve("suid"), "unix:gid"));
        assertEquals(04777, mode("plain"));
        assertEquals(02777, mode("sgid"));
        assertEquals(100, Files.getAttribute(share.resolve("sgid"), "unix:gid"));
    }

    /** mkdir(2) in a setgid directory makes a setgid directory, whatever mode was asked. */
    @Test
    void aDirectoryMadeInASetgidDirectoryIsSetgid() throws IOException {
        Path sg = Files.createDirectory(share.resolve("sg"));
        HostFs.chmod(sg.toString(), 02775);
        c.walk(ROOT, 2, "sg");
        c.mkdir(2, "child", 0755);
        assertEquals(02755, mode("sg/child"));
    }
}
