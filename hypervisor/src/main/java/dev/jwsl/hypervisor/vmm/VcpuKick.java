package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.sys.LibC;

/**
 * Interrupts a vCPU thread blocked in KVM_RUN: a signal whose handler does nothing makes the ioctl
 * return EINTR, and {@code immediate_exit} covers the window before the thread enters KVM_RUN.
 */
final class VcpuKick {
    /** SIGRTMIN+6 under glibc (SIGRTMIN is 34): unused by the JVM. */
    static final int SIGNAL = 40;
    private static boolean installed;

    private VcpuKick() {}

    static synchronized void install() {
        if (!installed) {
            // N.B. The handler must exist (an ignored signal never interrupts a syscall) and must not
            // run Java code (it may land while the thread is in any state). getpid is a libc function
            // that ignores its argument and is async-signal-safe: a native no-op handler.
            LibC.sigaction(SIGNAL, LibC.symbol("getpid"));
            installed = true;
        }
    }

    /** Signals thread {@code tid} of this process (an ended thread's id may be reused: harmless, the handler does nothing). */
    static void kick(int tid) {
        LibC.tgkill(tid, SIGNAL);
    }
}
