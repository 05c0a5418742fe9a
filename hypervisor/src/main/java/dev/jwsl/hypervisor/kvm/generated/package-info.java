/**
 * jextract output for linux/kvm.h (scripts/gen-kvm-bindings; scripts/kvm-bindings.symbols lists
 * what is kept). Only the hand-written {@code kvm} and {@code sys} classes use it (ArchitectureTest).
 */
package dev.jwsl.hypervisor.kvm.generated;
