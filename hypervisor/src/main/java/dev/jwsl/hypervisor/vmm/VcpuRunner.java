package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.kvm.Vcpu;
import dev.jwsl.hypervisor.kvm.VcpuExit;
import dev.jwsl.hypervisor.kvm.Registers;
import dev.jwsl.hypervisor.kvm.SpecialRegisters;
import dev.jwsl.hypervisor.sys.LibC;
import dev.jwsl.hypervisor.sys.SysCallException;

import java.util.Arrays;
import java.util.concurrent.CountDownLatch;

/** The thread that runs one vCPU and dispatches its exits. */
final class VcpuRunner {
    private final VirtualMachine machine;
    private final Vcpu vcpu;
    private final Thread thread;
    private final CountDownLatch started = new CountDownLatch(1);
    /** The thread's kernel id, once it runs. */
    private volatile int tid;
    private volatile long lastCpuNanos;

    VcpuRunner(VirtualMachine machine, Vcpu vcpu) {
        this.machine = machine;
        this.vcpu = vcpu;
        this.thread = Thread.ofPlatform().name("vcpu-" + vcpu.id()).daemon().unstarted(this::loop);
    }

    void start() {
        thread.start();
        awaitStarted();
    }

    private void awaitStarted() {
        try {
            started.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * The CPU time this vCPU's thread has used, its guest's included: 0 before it runs, the last
     * reading once it has ended.
     */
    long cpuNanos() {
        int t = tid;
        if (t != 0 && thread.isAlive()) {
            try {
                lastCpuNanos = LibC.threadCpuNanos(t);
            } catch (SysCallException e) {
                // it ended since isAlive
            }
        }
        return lastCpuNanos;
    }

    /** Makes the vCPU leave KVM_RUN (now, or at its next entry). */
    void kick() {
        vcpu.requestExit();
        if (thread.isAlive() && tid != 0) {
            VcpuKick.kick(tid);
        }
    }

    /**
     * Waits until the thread has left the vCPU for good, kicking it again every second. The
     * caller unmaps kvm_run and closes the vCPU next (a JUnit timeout once interrupted a closing
     * thread, which then unmapped kvm_run under a running vCPU: SIGSEGV).
     */
    void join() {
        awaitEnd(thread, this::kick);
    }

    /**
     * Waits for {@code t} to end, running {@code everySecond} while it has not. An interrupt does
     * not cut the wait short (it is kept for the caller): what comes next frees what {@code t} uses.
     */
    static void awaitEnd(Thread t, Runnable everySecond) {
        boolean interrupted = false;
        while (t.isAlive()) {
            try {
                t.join(1000);
            } catch (InterruptedException e) {
                interrupted = true;
            }
            if (t.isAlive()) {
                everySecond.run();
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void loop() {
        tid = LibC.gettid();
        started.countDown();
        try {
            while (!machine.stopping()) {
                VcpuExit exit = vcpu.run();
                switch (exit) {
                    case VcpuExit.Io io -> machine.ioBus().handle(io.in(), io.port(), io.size(), io.count(), io.data());
                    case VcpuExit.Mmio m -> machine.mmioBus().handle(m.write(), m.address(), m.data());
                    case VcpuExit.Interrupted ignored -> machine.parkIfPausing(vcpu);
                    case VcpuExit.Hlt ignored ->
                            machine.end(new StopReason.KvmError(vcpu.id(), "HLT exit with an in-kernel irqchip", registers()));
                    case VcpuExit.Shutdown ignored ->
                            machine.end(new StopReason.TripleFault(vcpu.id(), registers()));
                    case VcpuExit.InternalError e -> machine.end(new StopReason.KvmError(vcpu.id(),
                            "KVM internal error, suberror " + e.suberror() + " data " + hex(e.data()), registers()));
                    case VcpuExit.FailEntry f -> machine.end(new StopReason.KvmError(vcpu.id(),
                            "VM entry failed, hardware reason 0x" + Long.toHexString(f.reason()), registers()));
                    case VcpuExit.SystemEvent s -> machine.end(s.type() == 2 // KVM_SYSTEM_EVENT_RESET
                            ? new StopReason.GuestReset(machine.isGuestReady())
                            : new StopReason.KvmError(vcpu.id(), "system event " + s.type(), registers()));
                    case VcpuExit.Unknown u -> machine.end(new StopReason.KvmError(vcpu.id(),
                            "unhandled KVM exit reason " + u.reason(), registers()));
                }
            }
        } catch (RuntimeException | Error e) {
            machine.end(new StopReason.VmmError(e));
        }
    }

    private static String hex(long[] data) {
        return Arrays.stream(data).mapToObj(v -> "0x" + Long.toHexString(v)).toList().toString();
    }

    /** This vCPU's registers, formatted for the log. */
    private String registers() {
        try {
            Registers r = vcpu.registers();
            SpecialRegisters s = vcpu.specialRegisters();
            return ("rip=%016x rsp=%016x rflags=%08x rax=%016x rbx=%016x rcx=%016x rdx=%016x rsi=%016x rdi=%016x"
                    + " rbp=%016x r8=%016x r9=%016x r10=%016x r11=%016x r12=%016x r13=%016x r14=%016x r15=%016x"
                    + " cr0=%x cr2=%x cr3=%x cr4=%x efer=%x cs=%x")
                    .formatted(r.rip(), r.rsp(), r.rflags(), r.rax(), r.rbx(), r.rcx(), r.rdx(), r.rsi(), r.rdi(),
                            r.rbp(), r.r8(), r.r9(), r.r10(), r.r11(), r.r12(), r.r13(), r.r14(), r.r15(),
                            s.cr0(), s.cr2(), s.cr3(), s.cr4(), s.efer(), Short.toUnsignedInt(s.cs().selector()));
        } catch (RuntimeException e) {
            return "registers unavailable: " + e.getMessage();
        }
    }
}
