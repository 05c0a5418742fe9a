package dev.jwsl.hypervisor.kvm;

/**
 * The in-kernel devices' state of a VM for a snapshot, each the kernel's own structure as bytes.
 *
 * @param picMaster {@code struct kvm_irqchip} of KVM_IRQCHIP_PIC_MASTER
 * @param picSlave  {@code struct kvm_irqchip} of KVM_IRQCHIP_PIC_SLAVE
 * @param ioapic    {@code struct kvm_irqchip} of KVM_IRQCHIP_IOAPIC
 * @param pit       {@code struct kvm_pit_state2}
 * @param clock     {@code struct kvm_clock_data}
 */
public record VmState(byte[] picMaster, byte[] picSlave, byte[] ioapic, byte[] pit, byte[] clock) {}
