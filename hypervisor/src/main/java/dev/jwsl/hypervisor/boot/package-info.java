/**
 * Linux x86-64 boot: the guest memory {@link dev.jwsl.hypervisor.boot.Layout}, the zero page
 * ({@link dev.jwsl.hypervisor.boot.BootParams}, e820), GDT, identity page tables, MP table, CPUID
 * and long-mode register set-up, and the kernel loaders in {@code boot.loader}. Modelled on
 * Firecracker's arch/x86_64 and rust-vmm linux-loader. Specs: Documentation/arch/x86/boot.rst,
 * Intel MultiProcessor Specification 1.4, Intel SDM vol. 3.
 */
package dev.jwsl.hypervisor.boot;
