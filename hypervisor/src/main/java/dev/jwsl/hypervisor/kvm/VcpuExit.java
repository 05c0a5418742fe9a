package dev.jwsl.hypervisor.kvm;

import java.lang.foreign.MemorySegment;

/** Why KVM_RUN returned to the VMM, decoded from {@code struct kvm_run}. */
public sealed interface VcpuExit {
    /**
     * Port I/O. {@code data} is the {@code size * count} byte buffer inside kvm_run: for OUT the
     * guest's bytes, for IN the bytes the VMM must fill before the next KVM_RUN.
     */
    record Io(boolean in, int port, int size, int count, MemorySegment data) implements VcpuExit {}

    /** MMIO to an address with no memory slot; {@code data} holds {@code length} bytes. */
    record Mmio(boolean write, long address, int length, MemorySegment data) implements VcpuExit {}

    /** HLT without an in-kernel LAPIC to absorb it. */
    record Hlt() implements VcpuExit {}

    /** The guest triple-faulted (or otherwise reset itself through a shutdown condition). */
    record Shutdown() implements VcpuExit {}

    /** KVM could not emulate or run something; {@code data} is KVM's diagnostic words. */
    record InternalError(int suberror, long[] data) implements VcpuExit {}

    /** VM entry failed with a hardware reason code. */
    record FailEntry(long reason) implements VcpuExit {}

    /** A PSCI/ACPI-style system event (shutdown, reset, crash). */
    record SystemEvent(int type) implements VcpuExit {}

    /** KVM_RUN was interrupted by a signal or {@code immediate_exit}: a stop request. */
    record Interrupted() implements VcpuExit {}

    /** Any exit reason jwsl does not handle. */
    record Unknown(int reason) implements VcpuExit {}
}
