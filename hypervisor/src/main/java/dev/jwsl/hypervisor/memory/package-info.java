/**
 * Guest RAM. {@link dev.jwsl.hypervisor.memory.GuestMemory} is the one checked accessor through
 * which loaders and devices reach guest-physical memory; {@link
 * dev.jwsl.hypervisor.memory.MmapGuestMemory} owns the anonymous mappings behind it. Modelled on
 * the rust-vmm vm-memory crate (GuestAddress, GuestMemory, GuestRegionMmap).
 */
package dev.jwsl.hypervisor.memory;
