/**
 * The hand-written KVM layer over the jextract bindings in {@code kvm.generated}: one class per
 * fd ({@link dev.jwsl.hypervisor.kvm.Kvm}, {@link dev.jwsl.hypervisor.kvm.Vm},
 * {@link dev.jwsl.hypervisor.kvm.Vcpu}), each owning and closing its descriptor, a sealed
 * {@link dev.jwsl.hypervisor.kvm.VcpuExit} and a {@link dev.jwsl.hypervisor.kvm.Cap} enum, after
 * the rust-vmm kvm-ioctls crate. API reference: Documentation/virt/kvm/api.rst.
 *
 * <p>Nothing here knows about PVM or any other host quirk; those are capability checks in the
 * builder and kernel command-line choices.
 */
package dev.jwsl.hypervisor.kvm;
