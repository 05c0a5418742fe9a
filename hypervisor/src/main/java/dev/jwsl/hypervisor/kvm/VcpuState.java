package dev.jwsl.hypervisor.kvm;

import java.util.List;

/**
 * One vCPU's state as KVM hands it out for a snapshot. Each part is the kernel's own structure,
 * kept as bytes: the VMM does not interpret it, KVM checks it again when it is put back.
 *
 * @param id        the vCPU (and local APIC) id
 * @param mpState   {@code struct kvm_mp_state}
 * @param regs      {@code struct kvm_regs}
 * @param sregs     {@code struct kvm_sregs}
 * @param xsave     {@code struct kvm_xsave}, as large as KVM_CAP_XSAVE2 says
 * @param xcrs      {@code struct kvm_xcrs}
 * @param debugRegs {@code struct kvm_debugregs}
 * @param lapic     {@code struct kvm_lapic_state}
 * @param msrs      every MSR KVM would read back, in KVM's order
 * @param events    {@code struct kvm_vcpu_events}
 */
public record VcpuState(int id, byte[] mpState, byte[] regs, byte[] sregs, byte[] xsave, byte[] xcrs,
                        byte[] debugRegs, byte[] lapic, List<Msr> msrs, byte[] events) {
    public VcpuState {
        msrs = List.copyOf(msrs);
    }
}
