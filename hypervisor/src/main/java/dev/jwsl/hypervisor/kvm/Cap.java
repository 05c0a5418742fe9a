package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.kvm.generated.KvmH;

/** KVM capabilities jwsl checks for (KVM_CHECK_EXTENSION). */
public enum Cap {
    IRQCHIP(KvmH.KVM_CAP_IRQCHIP()),
    USER_MEMORY(KvmH.KVM_CAP_USER_MEMORY()),
    SET_TSS_ADDR(KvmH.KVM_CAP_SET_TSS_ADDR()),
    SET_IDENTITY_MAP_ADDR(KvmH.KVM_CAP_SET_IDENTITY_MAP_ADDR()),
    PIT2(KvmH.KVM_CAP_PIT2()),
    IRQFD(KvmH.KVM_CAP_IRQFD()),
    IOEVENTFD(KvmH.KVM_CAP_IOEVENTFD()),
    EXT_CPUID(KvmH.KVM_CAP_EXT_CPUID()),
    IMMEDIATE_EXIT(KvmH.KVM_CAP_IMMEDIATE_EXIT()),
    NR_VCPUS(KvmH.KVM_CAP_NR_VCPUS()),
    MAX_VCPUS(KvmH.KVM_CAP_MAX_VCPUS()),
    TSC_DEADLINE_TIMER(KvmH.KVM_CAP_TSC_DEADLINE_TIMER());

    final int id;

    Cap(int id) {
        this.id = id;
    }
}
