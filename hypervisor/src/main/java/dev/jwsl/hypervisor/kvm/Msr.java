package dev.jwsl.hypervisor.kvm;

/** One model-specific register and its value, as KVM_SET_MSRS and KVM_GET_MSRS carry it. */
public record Msr(int index, long value) {
    @Override
    public String toString() {
        return "MSR 0x" + Integer.toHexString(index) + " = 0x" + Long.toHexString(value);
    }
}
