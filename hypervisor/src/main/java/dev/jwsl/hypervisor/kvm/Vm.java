package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.kvm.generated.KvmH;
import dev.jwsl.hypervisor.kvm.generated.kvm_clock_data;
import dev.jwsl.hypervisor.kvm.generated.kvm_irqchip;
import dev.jwsl.hypervisor.kvm.generated.kvm_pit_state2;
import dev.jwsl.hypervisor.kvm.generated.kvm_enable_cap;
import dev.jwsl.hypervisor.kvm.generated.kvm_irq_level;
import dev.jwsl.hypervisor.kvm.generated.kvm_irqfd;
import dev.jwsl.hypervisor.kvm.generated.kvm_ioeventfd;
import dev.jwsl.hypervisor.kvm.generated.kvm_pit_config;
import dev.jwsl.hypervisor.kvm.generated.kvm_userspace_memory_region;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** A KVM VM fd: memory slots, the in-kernel irqchip and PIT, interrupt lines, vCPUs. */
public final class Vm extends Fd {
    private final int vcpuMmapSize;

    Vm(int fd, int vcpuMmapSize) {
        super(fd);
        this.vcpuMmapSize = vcpuMmapSize;
    }

    /**
     * KVM_SET_USER_MEMORY_REGION: maps {@code size} bytes of this process at {@code hostAddress} to
     * guest-physical {@code guestBase} in slot {@code slot}.
     */
    public void setUserMemoryRegion(int slot, long guestBase, long size, long hostAddress) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment r = kvm_userspace_memory_region.allocate(arena);
            kvm_userspace_memory_region.slot(r, slot);
            kvm_userspace_memory_region.flags(r, 0);
            kvm_userspace_memory_region.guest_phys_addr(r, guestBase);
            kvm_userspace_memory_region.memory_size(r, size);
            kvm_userspace_memory_region.userspace_addr(r, hostAddress);
            ioctl(KvmH.KVM_SET_USER_MEMORY_REGION(), r, "KVM_SET_USER_MEMORY_REGION");
        }
    }

    /** KVM_SET_TSS_ADDR: three pages of guest-physical space KVM needs on Intel hosts. */
    public void setTssAddress(long gpa) {
        ioctl(KvmH.KVM_SET_TSS_ADDR(), gpa, "KVM_SET_TSS_ADDR");
    }

    /** KVM_SET_IDENTITY_MAP_ADDR: one page for the EPT identity map on Intel hosts. */
    public void setIdentityMapAddress(long gpa) {
        try (Arena arena = Arena.ofConfined()) {
            ioctl(KvmH.KVM_SET_IDENTITY_MAP_ADDR(), arena.allocateFrom(KvmH.C_LONG_LONG, gpa),
                    "KVM_SET_IDENTITY_MAP_ADDR");
        }
    }

    /**
     * KVM_ENABLE_CAP(KVM_CAP_PMU_CAPABILITY, KVM_PMU_CAP_DISABLE): no virtual PMU, so that guest
     * accesses to performance-counter MSRs fault at once instead of reaching counters the host
     * only partly emulates. Only before the first vCPU; false if this KVM cannot.
     */
    public boolean disablePmu() {
        int supported = ioctl(KvmH.KVM_CHECK_EXTENSION(), KvmH.KVM_CAP_PMU_CAPABILITY(), "KVM_CHECK_EXTENSION");
        if ((supported & KvmH.KVM_PMU_CAP_DISABLE()) == 0) {
            return false;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = kvm_enable_cap.allocate(arena);
            kvm_enable_cap.cap(c, KvmH.KVM_CAP_PMU_CAPABILITY());
            kvm_enable_cap.args(c, 0, KvmH.KVM_PMU_CAP_DISABLE());
            ioctl(KvmH.KVM_ENABLE_CAP(), c, "KVM_ENABLE_CAP(KVM_CAP_PMU_CAPABILITY)");
        }
        return true;
    }

    /** KVM_CREATE_IRQCHIP: in-kernel PIC pair, IOAPIC and per-vCPU local APICs. */
    public void createIrqchip() {
        ioctl(KvmH.KVM_CREATE_IRQCHIP(), 0L, "KVM_CREATE_IRQCHIP");
    }

    /** KVM_CREATE_PIT2: in-kernel i8254, with the speaker port left to a dummy. */
    public void createPit2() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = kvm_pit_config.allocate(arena);
            kvm_pit_config.flags(c, KvmH.KVM_PIT_SPEAKER_DUMMY());
            ioctl(KvmH.KVM_CREATE_PIT2(), c, "KVM_CREATE_PIT2");
        }
    }

    /** KVM_IRQ_LINE: drive GSI {@code gsi} to {@code level}. */
    public void irqLine(int gsi, boolean level) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment l = kvm_irq_level.allocate(arena);
            kvm_irq_level.irq(l, gsi);
            kvm_irq_level.level(l, level ? 1 : 0);
            ioctl(KvmH.KVM_IRQ_LINE(), l, "KVM_IRQ_LINE");
        }
    }

    /** KVM_IRQFD: a write to {@code eventFd} injects an edge on {@code gsi}. */
    public void registerIrqfd(int eventFd, int gsi) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment f = kvm_irqfd.allocate(arena);
            kvm_irqfd.fd(f, eventFd);
            kvm_irqfd.gsi(f, gsi);
            ioctl(KvmH.KVM_IRQFD(), f, "KVM_IRQFD");
        }
    }

    /** KVM_IOEVENTFD: a guest write of any value to {@code addr} (MMIO) signals {@code eventFd}. */
    public void registerIoeventfd(int eventFd, long addr, int length) {
        ioeventfd(eventFd, addr, length, 0, 0);
    }

    /**
     * KVM_IOEVENTFD with KVM_IOEVENTFD_FLAG_DATAMATCH: only a {@code length}-byte MMIO write of
     * exactly {@code datamatch} to {@code addr} signals {@code eventFd} (and does not exit to the
     * VMM); other values still exit. Virtio-mmio uses one per queue on QueueNotify.
     */
    public void registerIoeventfd(int eventFd, long addr, int length, long datamatch) {
        ioeventfd(eventFd, addr, length, datamatch, KvmH.KVM_IOEVENTFD_FLAG_DATAMATCH());
    }

    private void ioeventfd(int eventFd, long addr, int length, long datamatch, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment f = kvm_ioeventfd.allocate(arena);
            kvm_ioeventfd.fd(f, eventFd);
            kvm_ioeventfd.addr(f, addr);
            kvm_ioeventfd.len(f, length);
            kvm_ioeventfd.datamatch(f, datamatch);
            kvm_ioeventfd.flags(f, flags);
            ioctl(KvmH.KVM_IOEVENTFD(), f, "KVM_IOEVENTFD");
        }
    }

    /** The in-kernel PICs', IOAPIC's, PIT's and clock's state, for a snapshot (vCPUs stopped). */
    public VmState saveState() {
        return new VmState(irqchip(KvmH.KVM_IRQCHIP_PIC_MASTER()), irqchip(KvmH.KVM_IRQCHIP_PIC_SLAVE()),
                irqchip(KvmH.KVM_IRQCHIP_IOAPIC()),
                getStruct(KvmH.KVM_GET_PIT2(), kvm_pit_state2.sizeof(), "KVM_GET_PIT2"),
                getStruct(KvmH.KVM_GET_CLOCK(), kvm_clock_data.sizeof(), "KVM_GET_CLOCK"));
    }

    /**
     * Puts back a {@link #saveState()}: the guest's clock goes on from where the snapshot stopped
     * it, so its CLOCK_MONOTONIC never goes back; the wall clock is the guest's to step.
     */
    public void restoreState(VmState state) {
        setIrqchip(KvmH.KVM_IRQCHIP_PIC_MASTER(), state.picMaster());
        setIrqchip(KvmH.KVM_IRQCHIP_PIC_SLAVE(), state.picSlave());
        setIrqchip(KvmH.KVM_IRQCHIP_IOAPIC(), state.ioapic());
        setStruct(KvmH.KVM_SET_PIT2(), state.pit(), kvm_pit_state2.sizeof(), "KVM_SET_PIT2");
        // N.B. KVM_GET_CLOCK's flags say what it reported (KVM_CLOCK_TSC_STABLE, realtime, host
        // TSC); KVM_SET_CLOCK takes only the clock value unless flags ask for more
        byte[] clock = state.clock().clone();
        if (clock.length == kvm_clock_data.sizeof()) {
            ByteBuffer.wrap(clock).order(ByteOrder.nativeOrder()).putInt((int) kvm_clock_data.flags$offset(), 0);
        }
        setStruct(KvmH.KVM_SET_CLOCK(), clock, kvm_clock_data.sizeof(), "KVM_SET_CLOCK");
    }

    private byte[] irqchip(int chip) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = arena.allocate(kvm_irqchip.sizeof(), 8);
            kvm_irqchip.chip_id(c, chip);
            ioctl(KvmH.KVM_GET_IRQCHIP(), c, "KVM_GET_IRQCHIP");
            return c.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    private void setIrqchip(int chip, byte[] value) {
        int id = value.length >= 4 ? ByteBuffer.wrap(value).order(ByteOrder.nativeOrder()).getInt((int) kvm_irqchip.chip_id$offset()) : -1;
        if (id != chip) {
            throw new KvmException(KvmException.Reason.IOCTL, "KVM_SET_IRQCHIP: state of chip " + id + " where chip " + chip + " belongs");
        }
        setStruct(KvmH.KVM_SET_IRQCHIP(), value, kvm_irqchip.sizeof(), "KVM_SET_IRQCHIP");
    }

    /** KVM_CREATE_VCPU with APIC id {@code id}. */
    public Vcpu createVcpu(int id) {
        int fd = ioctl(KvmH.KVM_CREATE_VCPU(), id, "KVM_CREATE_VCPU");
        return new Vcpu(fd, id, vcpuMmapSize);
    }
}
