package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.kvm.Vcpu;
import dev.jwsl.hypervisor.kvm.VcpuExit;
import dev.jwsl.hypervisor.kvm.generated.kvm_regs;
import dev.jwsl.hypervisor.kvm.generated.kvm_sregs;
import dev.jwsl.hypervisor.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;

/** The thread that runs one vCPU and dispatches its exits. */
final class VcpuRunner {
    private final VirtualMachine machine;
    private final Vcpu vcpu;
    private final Thread thread;
    private final CountDownLatch started = new CountDownLatch(1);
    private volatile long pthread;

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

    /** Makes the vCPU leave KVM_RUN (now, or at its next entry). */
    void kick() {
        vcpu.requestExit();
        if (thread.isAlive() && pthread != 0) {
            VcpuKick.kick(pthread);
        }
    }

    void join() {
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void loop() {
        pthread = LibC.pthreadSelf();
        started.countDown();
        try {
            while (!machine.stopping()) {
                VcpuExit exit = vcpu.run();
                switch (exit) {
                    case VcpuExit.Io io -> machine.ioBus().handle(io.in(), io.port(), io.size(), io.count(), io.data());
                    case VcpuExit.Mmio m -> machine.mmioBus().handle(m.write(), m.address(), m.data());
                    case VcpuExit.Interrupted ignored -> { }
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
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment r = vcpu.getRegs(arena);
            MemorySegment s = vcpu.getSregs(arena);
            return ("rip=%016x rsp=%016x rflags=%08x rax=%016x rbx=%016x rcx=%016x rdx=%016x rsi=%016x rdi=%016x"
                    + " rbp=%016x r8=%016x r9=%016x r10=%016x r11=%016x r12=%016x r13=%016x r14=%016x r15=%016x"
                    + " cr0=%x cr2=%x cr3=%x cr4=%x efer=%x cs=%x")
                    .formatted(kvm_regs.rip(r), kvm_regs.rsp(r), kvm_regs.rflags(r), kvm_regs.rax(r),
                            kvm_regs.rbx(r), kvm_regs.rcx(r), kvm_regs.rdx(r), kvm_regs.rsi(r), kvm_regs.rdi(r),
                            kvm_regs.rbp(r), kvm_regs.r8(r), kvm_regs.r9(r), kvm_regs.r10(r), kvm_regs.r11(r),
                            kvm_regs.r12(r), kvm_regs.r13(r), kvm_regs.r14(r), kvm_regs.r15(r),
                            kvm_sregs.cr0(s), kvm_sregs.cr2(s), kvm_sregs.cr3(s), kvm_sregs.cr4(s),
                            kvm_sregs.efer(s), Short.toUnsignedInt(
                                    dev.jwsl.hypervisor.kvm.generated.kvm_segment.selector(kvm_sregs.cs(s))));
        } catch (RuntimeException e) {
            return "registers unavailable: " + e.getMessage();
        }
    }
}
