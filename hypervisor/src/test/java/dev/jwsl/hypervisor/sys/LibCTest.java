package dev.jwsl.hypervisor.sys;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every call in {@link LibC} against the real kernel: the system call numbers and argument order are right. */
class LibCTest {
    @TempDir
    Path dir;

    @Test
    void fileCallsReadWriteAndSizeARealFile() throws Exception {
        Path file = dir.resolve("f");
        Files.writeString(file, "hello world");
        int fd = LibC.open(file.toString(), LibC.O_RDWR | LibC.O_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(5);
            assertEquals(5, LibC.pread(fd, buf, 6, "f"));
            assertEquals("world", new String(buf.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII));
            assertEquals(5, LibC.read(fd, buf, "f"));
            assertEquals("hello", new String(buf.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII));
            assertEquals(11, LibC.size(fd, "f")); // N.B. moves the offset to the end
            assertEquals(4, LibC.pwrite(fd, arena.allocateFrom("WORL", StandardCharsets.US_ASCII).asSlice(0, 4), 6, "f"));
            assertEquals(1, LibC.write(fd, arena.allocateFrom("_", StandardCharsets.US_ASCII).asSlice(0, 1), "f"));
            LibC.fdatasync(fd, "f");
            LibC.flock(fd, LibC.LOCK_EX | LibC.LOCK_NB, "f");
            LibC.fallocate(fd, 0, 0, 8192, "f");
            assertEquals(8192, LibC.size(fd, "f"));
            LibC.fallocate(fd, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, 0, 4096, "f");
        } finally {
            LibC.close(fd);
        }
        byte[] data = Files.readAllBytes(file);
        assertEquals(8192, data.length);
        assertArrayEquals(new byte[4096], java.util.Arrays.copyOf(data, 4096), "the punched hole reads back as zeros");
    }

    @Test
    void aFailedCallNamesTheCallItsSubjectAndErrno() {
        SysCallException e = assertThrows(SysCallException.class,
                () -> LibC.open(dir.resolve("missing").toString(), LibC.O_RDONLY));
        assertEquals("open(" + dir.resolve("missing") + ")", e.call());
        assertEquals(Errno.ENOENT, e.errno());
        SysCallException bad = assertThrows(SysCallException.class, () -> LibC.ioctl(-1, 0, 0, "TEST"));
        assertEquals("ioctl(TEST)", bad.call());
        assertEquals(Errno.EBADF, bad.errno());
    }

    @Test
    void eventfdPollAndAnonymousMappings() {
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pollfd = arena.allocate(LibC.POLLFD_SIZE, 4);
            pollfd.set(ValueLayout.JAVA_INT, 0, fd);
            pollfd.set(ValueLayout.JAVA_SHORT, 4, LibC.POLLIN);
            assertEquals(0, LibC.poll(pollfd, 1, 0), "nothing written yet");
            MemorySegment one = arena.allocate(ValueLayout.JAVA_LONG);
            one.set(ValueLayout.JAVA_LONG, 0, 1);
            assertEquals(8, LibC.write(fd, one, "eventfd"));
            assertEquals(1, LibC.poll(pollfd, 1, 1000));
            assertEquals(LibC.POLLIN, pollfd.get(ValueLayout.JAVA_SHORT, 6));
        } finally {
            LibC.close(fd);
        }
        MemorySegment map = LibC.mmap(1 << 21, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS,
                -1, 0, "test");
        map.set(ValueLayout.JAVA_LONG, (1 << 21) - 8, 42);
        LibC.madvise(map, LibC.MADV_HUGEPAGE);
        assertEquals(42, map.get(ValueLayout.JAVA_LONG, (1 << 21) - 8));
        LibC.munmap(map);
    }

    @Test
    void threadIdsAndSignalsToThem() {
        int tid = LibC.gettid();
        assertNotEquals(0, tid);
        assertEquals(0, LibC.tgkill(tid, 0), "signal 0 only checks that the thread exists");
        assertEquals(3 /* ESRCH */, LibC.tgkill(Integer.MAX_VALUE, 0));
    }

    @Test
    void aThreadsCpuTimeGrowsWhileItRunsNotWhileItWaits() throws Exception {
        java.util.concurrent.CompletableFuture<Integer> waiterTid = new java.util.concurrent.CompletableFuture<>();
        java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
        Thread waiter = Thread.ofPlatform().start(() -> {
            waiterTid.complete(LibC.gettid());
            try {
                done.await();
            } catch (InterruptedException ignored) {
                // ends the thread
            }
        });
        int tid = LibC.gettid();
        long start = System.nanoTime();
        long self = LibC.threadCpuNanos(tid);
        long other = LibC.threadCpuNanos(waiterTid.get());
        long ran;
        do { // spin until this thread has had 100 ms of CPU (10 s at most, on a loaded machine)
            ran = LibC.threadCpuNanos(tid) - self;
        } while (ran < 100_000_000L && System.nanoTime() - start < 10_000_000_000L);
        long wall = System.nanoTime() - start;
        long waited = LibC.threadCpuNanos(waiterTid.get()) - other;
        done.countDown();
        waiter.join();
        assertTrue(ran >= 100_000_000L && ran <= wall, "ran " + ran + " ns of CPU in " + wall + " ns");
        assertTrue(waited < 20_000_000L, "the waiting thread ran " + waited + " ns");
        assertThrows(SysCallException.class, () -> LibC.threadCpuNanos(1 << 22), "no thread has the highest id");
        assertThrows(IllegalArgumentException.class, () -> LibC.threadCpuNanos(Integer.MAX_VALUE));
    }

    @Test
    void aNoOpHandlerInstalledForASignalInterruptsABlockingCallAndReturns() throws Exception {
        int signal = 41; // not VcpuKick's, nor the JVM's
        LibC.sigaction(signal, LibC.symbol("getpid"));
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        try {
            java.util.concurrent.CompletableFuture<Integer> tid = new java.util.concurrent.CompletableFuture<>();
            java.util.concurrent.CompletableFuture<Integer> polled = new java.util.concurrent.CompletableFuture<>();
            Thread t = Thread.ofPlatform().start(() -> {
                tid.complete(LibC.gettid());
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment pollfd = arena.allocate(LibC.POLLFD_SIZE, 4);
                    pollfd.set(ValueLayout.JAVA_INT, 0, fd);
                    pollfd.set(ValueLayout.JAVA_SHORT, 4, LibC.POLLIN);
                    polled.complete(LibC.poll(pollfd, 1, 600_000)); // nothing is ever written
                }
            });
            // signalled until the poll returns: the first may land before the thread polls
            while (!polled.isDone()) {
                assertEquals(0, LibC.tgkill(tid.get(), signal));
                Thread.sleep(50);
            }
            assertEquals(0, polled.get(), "poll ended by EINTR, nothing to read");
            t.join();
        } finally {
            LibC.close(fd);
        }
    }
}
