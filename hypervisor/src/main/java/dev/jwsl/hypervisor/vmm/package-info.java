/**
 * VM lifecycle: {@link dev.jwsl.hypervisor.vmm.VmBuilder} assembles KVM, memory, boot data,
 * devices and vCPUs; {@link dev.jwsl.hypervisor.vmm.VirtualMachine} runs one vCPU thread each and
 * ends with a {@link dev.jwsl.hypervisor.vmm.StopReason}. Host-specific accommodations are
 * capability checks in {@link dev.jwsl.hypervisor.vmm.HostQuirks}, never a separate code path.
 */
package dev.jwsl.hypervisor.vmm;
