package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.kvm.generated.KvmH;
import dev.jwsl.hypervisor.kvm.generated.kvm_debugregs;
import dev.jwsl.hypervisor.kvm.generated.kvm_mp_state;
import dev.jwsl.hypervisor.kvm.generated.kvm_vcpu_events;
import dev.jwsl.hypervisor.kvm.generated.kvm_xcrs;
import dev.jwsl.hypervisor.kvm.generated.kvm_xsave;
import dev.jwsl.hypervisor.kvm.generated.kvm_lapic_state;
import dev.jwsl.hypervisor.kvm.generated.kvm_msr_entry;
import dev.jwsl.hypervisor.kvm.generated.kvm_msrs;
import dev.jwsl.hypervisor.kvm.generated.kvm_regs;
import dev.jwsl.hypervisor.kvm.generated.kvm_run;
import dev.jwsl.hypervisor.kvm.generated.kvm_sregs;
import dev.jwsl.hypervisor.sys.Errno;
import dev.jwsl.hypervisor.sys.LibC;
import dev.jwsl.hypervisor.sys.SysCallException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * A vCPU fd and its shared {@code kvm_run} page. All calls except {@link #requestExit()} must come
 * from the one thread that runs this vCPU, as KVM serialises vCPU ioctls.
 */
public final class Vcpu extends Fd {
    private final int id;
    private final MemorySegment run;

    Vcpu(int fd, int id, int mmapSize) {
        super(fd);
        this.id = id;
        try {
            this.run = LibC.mmap(mmapSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0, "kvm_run");
        } catch (SysCallException e) {
            super.close();
            throw new KvmException(KvmException.Reason.IOCTL, "cannot map kvm_run: " + e.getMessage(), e);
        }
    }

    /** The vCPU (and local APIC) id. */
    public int id() {
        return id;
    }

    /** Runs the vCPU until the next exit KVM hands to user space. */
    public VcpuExit run() {
        try {
            LibC.ioctl(fd(), KvmH.KVM_RUN(), 0L, "KVM_RUN");
        } catch (SysCallException e) {
            if (e.errno() == Errno.EINTR || e.errno() == Errno.EAGAIN) {
                kvm_run.immediate_exit(run, (byte) 0);
                return new VcpuExit.Interrupted();
            }
            throw new KvmException(KvmException.Reason.IOCTL, e.getMessage(), e);
        }
        int reason = kvm_run.exit_reason(run);
        if (reason == KvmH.KVM_EXIT_IO()) {
            MemorySegment io = kvm_run.io(run);
            int size = kvm_run.io.size(io) & 0xff;
            int count = kvm_run.io.count(io);
            long offset = kvm_run.io.data_offset(io);
            // The kernel places the data inside the kvm_run mapping; check it anyway.
            long length = (long) size * count;
            if (offset < 0 || length < 0 || offset > run.byteSize() - length) {
                throw new KvmException(KvmException.Reason.IOCTL, "KVM_EXIT_IO data outside kvm_run");
            }
            return new VcpuExit.Io(kvm_run.io.direction(io) == KvmH.KVM_EXIT_IO_IN(),
                    Short.toUnsignedInt(kvm_run.io.port(io)), size, count, run.asSlice(offset, length));
        } else if (reason == KvmH.KVM_EXIT_MMIO()) {
            MemorySegment m = kvm_run.mmio(run);
            int len = Math.min(kvm_run.mmio.len(m), 8);
            return new VcpuExit.Mmio(kvm_run.mmio.is_write(m) != 0, kvm_run.mmio.phys_addr(m), len,
                    kvm_run.mmio.data(m).asSlice(0, len));
        } else if (reason == KvmH.KVM_EXIT_HLT()) {
            return new VcpuExit.Hlt();
        } else if (reason == KvmH.KVM_EXIT_SHUTDOWN()) {
            return new VcpuExit.Shutdown();
        } else if (reason == KvmH.KVM_EXIT_INTERNAL_ERROR()) {
            MemorySegment ie = kvm_run.internal(run);
            int n = Math.min(kvm_run.internal.ndata(ie), 16);
            long[] data = new long[n];
            for (int i = 0; i < n; i++) {
                data[i] = kvm_run.internal.data(ie, i);
            }
            return new VcpuExit.InternalError(kvm_run.internal.suberror(ie), data);
        } else if (reason == KvmH.KVM_EXIT_FAIL_ENTRY()) {
            return new VcpuExit.FailEntry(kvm_run.fail_entry.hardware_entry_failure_reason(kvm_run.fail_entry(run)));
        } else if (reason == KvmH.KVM_EXIT_SYSTEM_EVENT()) {
            return new VcpuExit.SystemEvent(kvm_run.system_event.type(kvm_run.system_event(run)));
        } else if (reason == KvmH.KVM_EXIT_INTR()) {
            return new VcpuExit.Interrupted();
        }
        return new VcpuExit.Unknown(reason);
    }

    /**
     * Makes the current or next KVM_RUN return {@link VcpuExit.Interrupted}; safe from any thread.
     * Pair with a signal to the vCPU thread to interrupt a KVM_RUN already in progress.
     */
    public void requestExit() {
        kvm_run.immediate_exit(run, (byte) 1);
    }

    /** KVM_GET_REGS. */
    public Registers registers() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment regs = kvm_regs.allocate(arena);
            ioctl(KvmH.KVM_GET_REGS(), regs, "KVM_GET_REGS");
            return Registers.from(regs);
        }
    }

    /** KVM_SET_REGS. */
    public void setRegisters(Registers registers) {
        try (Arena arena = Arena.ofConfined()) {
            ioctl(KvmH.KVM_SET_REGS(), registers.toStruct(arena), "KVM_SET_REGS");
        }
    }

    /** KVM_GET_SREGS. */
    public SpecialRegisters specialRegisters() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sregs = kvm_sregs.allocate(arena);
            ioctl(KvmH.KVM_GET_SREGS(), sregs, "KVM_GET_SREGS");
            return SpecialRegisters.from(sregs);
        }
    }

    /** KVM_SET_SREGS. */
    public void setSpecialRegisters(SpecialRegisters sregs) {
        try (Arena arena = Arena.ofConfined()) {
            ioctl(KvmH.KVM_SET_SREGS(), sregs.toStruct(arena), "KVM_SET_SREGS");
        }
    }

    /** KVM_SET_CPUID2. */
    public void setCpuid(CpuidEntries cpuid) {
        try (Arena arena = Arena.ofConfined()) {
            ioctl(KvmH.KVM_SET_CPUID2(), cpuid.toKvmCpuid2(arena), "KVM_SET_CPUID2");
        }
    }

    /** KVM_GET_LAPIC: the local APIC's 1 KiB register page ({@code struct kvm_lapic_state} is only that). */
    public MemorySegment getLapic(Arena arena) {
        MemorySegment lapic = kvm_lapic_state.allocate(arena);
        ioctl(KvmH.KVM_GET_LAPIC(), lapic, "KVM_GET_LAPIC");
        return lapic;
    }

    /** KVM_SET_LAPIC. */
    public void setLapic(MemorySegment lapic) {
        ioctl(KvmH.KVM_SET_LAPIC(), lapic, "KVM_SET_LAPIC");
    }

    /**
     * KVM_SET_MSRS of {@code msrs}, in order; KVM stops at the first one it refuses. Returns those
     * it refused (each is skipped and the rest set).
     */
    public List<Msr> setMsrs(List<Msr> msrs) {
        List<Msr> refused = new ArrayList<>();
        List<Msr> left = msrs;
        try (Arena arena = Arena.ofConfined()) {
            while (!left.isEmpty()) {
                int set = ioctl(KvmH.KVM_SET_MSRS(), msrList(arena, left), "KVM_SET_MSRS");
                if (set >= left.size()) {
                    break;
                }
                refused.add(left.get(set));
                left = left.subList(set + 1, left.size());
            }
        }
        return refused;
    }

    /** KVM_GET_MSRS of one register. */
    public long getMsr(int index) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = msrList(arena, List.of(new Msr(index, 0)));
            if (ioctl(KvmH.KVM_GET_MSRS(), m, "KVM_GET_MSRS") != 1) {
                throw new KvmException(KvmException.Reason.IOCTL, "KVM_GET_MSRS refused MSR 0x" + Integer.toHexString(index));
            }
            return kvm_msr_entry.data(m.asSlice(kvm_msrs.sizeof(), kvm_msr_entry.sizeof()));
        }
    }

    /**
     * The whole state for a snapshot. Only between two KVM_RUNs, the last of which returned
     * {@link VcpuExit.Interrupted}, so that no I/O instruction is half done (KVM API,
     * KVM_CAP_IMMEDIATE_EXIT), and on this vCPU's thread.
     *
     * @param xsaveSize  the size of {@code struct kvm_xsave} on this host ({@link Kvm#xsaveSize()})
     * @param msrIndices the MSRs to save ({@link Kvm#msrIndexList()}); those KVM will not read are left out
     */
    public VcpuState saveState(int xsaveSize, int[] msrIndices) {
        byte[] mp = getStruct(KvmH.KVM_GET_MP_STATE(), kvm_mp_state.sizeof(), "KVM_GET_MP_STATE");
        byte[] regs = getStruct(KvmH.KVM_GET_REGS(), kvm_regs.sizeof(), "KVM_GET_REGS");
        byte[] sregs = getStruct(KvmH.KVM_GET_SREGS(), kvm_sregs.sizeof(), "KVM_GET_SREGS");
        long legacy = kvm_xsave.sizeof(); // 4 KiB; XSAVE2 when AMX makes the state larger
        byte[] xsave = getStruct(xsaveSize > legacy ? KvmH.KVM_GET_XSAVE2() : KvmH.KVM_GET_XSAVE(), Math.max(xsaveSize, legacy),
                "KVM_GET_XSAVE");
        byte[] xcrs = getStruct(KvmH.KVM_GET_XCRS(), kvm_xcrs.sizeof(), "KVM_GET_XCRS");
        byte[] debug = getStruct(KvmH.KVM_GET_DEBUGREGS(), kvm_debugregs.sizeof(), "KVM_GET_DEBUGREGS");
        byte[] lapic = getStruct(KvmH.KVM_GET_LAPIC(), kvm_lapic_state.sizeof(), "KVM_GET_LAPIC");
        List<Msr> msrs;
        try (Arena arena = Arena.ofConfined()) {
            msrs = getMsrs(arena, msrIndices);
        }
        byte[] events = getStruct(KvmH.KVM_GET_VCPU_EVENTS(), kvm_vcpu_events.sizeof(), "KVM_GET_VCPU_EVENTS");
        return new VcpuState(id, mp, regs, sregs, xsave, xcrs, debug, lapic, msrs, events);
    }

    /**
     * Puts back a state from {@link #saveState}, on a vCPU that has CPUID set and has not run,
     * in the order KVM needs: MSRs after the LAPIC (the TSC deadline is an offset from the TSC and
     * lives in the LAPIC), events last (they carry the pending exception and interrupt shadow).
     *
     * @return the MSRs KVM refused (each skipped, the rest set)
     */
    public List<Msr> restoreState(VcpuState state) {
        if (state.id() != id) {
            throw new KvmException(KvmException.Reason.IOCTL, "vCPU " + id + " given the state of vCPU " + state.id());
        }
        setStruct(KvmH.KVM_SET_MP_STATE(), state.mpState(), kvm_mp_state.sizeof(), "KVM_SET_MP_STATE");
        setStruct(KvmH.KVM_SET_REGS(), state.regs(), kvm_regs.sizeof(), "KVM_SET_REGS");
        setStruct(KvmH.KVM_SET_SREGS(), state.sregs(), kvm_sregs.sizeof(), "KVM_SET_SREGS");
        setStruct(KvmH.KVM_SET_XSAVE(), state.xsave(), state.xsave().length, "KVM_SET_XSAVE");
        setStruct(KvmH.KVM_SET_XCRS(), state.xcrs(), kvm_xcrs.sizeof(), "KVM_SET_XCRS");
        setStruct(KvmH.KVM_SET_DEBUGREGS(), state.debugRegs(), kvm_debugregs.sizeof(), "KVM_SET_DEBUGREGS");
        setStruct(KvmH.KVM_SET_LAPIC(), state.lapic(), kvm_lapic_state.sizeof(), "KVM_SET_LAPIC");
        List<Msr> refused = setMsrs(state.msrs());
        setStruct(KvmH.KVM_SET_VCPU_EVENTS(), state.events(), kvm_vcpu_events.sizeof(), "KVM_SET_VCPU_EVENTS");
        return refused;
    }

    /** KVM_GET_MSRS of each index it will read; KVM stops at the first it refuses, which is skipped. */
    private List<Msr> getMsrs(Arena arena, int[] indices) {
        List<Msr> out = new ArrayList<>(indices.length);
        int from = 0;
        while (from < indices.length) {
            List<Msr> ask = new ArrayList<>();
            for (int i = from; i < indices.length; i++) {
                ask.add(new Msr(indices[i], 0));
            }
            MemorySegment m = msrList(arena, ask);
            int got = ioctl(KvmH.KVM_GET_MSRS(), m, "KVM_GET_MSRS");
            for (int i = 0; i < got; i++) {
                MemorySegment e = m.asSlice(kvm_msrs.sizeof() + i * kvm_msr_entry.sizeof(), kvm_msr_entry.sizeof());
                out.add(new Msr(kvm_msr_entry.index(e), kvm_msr_entry.data(e)));
            }
            from += got + 1;
        }
        return out;
    }

    private static MemorySegment msrList(Arena arena, List<Msr> msrs) {
        MemorySegment m = arena.allocate(kvm_msrs.sizeof() + msrs.size() * kvm_msr_entry.sizeof(), 8);
        kvm_msrs.nmsrs(m, msrs.size());
        for (int i = 0; i < msrs.size(); i++) {
            MemorySegment e = m.asSlice(kvm_msrs.sizeof() + i * kvm_msr_entry.sizeof(), kvm_msr_entry.sizeof());
            kvm_msr_entry.index(e, msrs.get(i).index());
            kvm_msr_entry.data(e, msrs.get(i).value());
        }
        return m;
    }

    @Override
    public void close() {
        LibC.munmap(run);
        super.close();
    }
}
