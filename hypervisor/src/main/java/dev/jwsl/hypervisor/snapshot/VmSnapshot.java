package dev.jwsl.hypervisor.snapshot;

import dev.jwsl.hypervisor.devices.legacy.Uart8250;
import dev.jwsl.hypervisor.kvm.VcpuState;
import dev.jwsl.hypervisor.kvm.VmState;
import dev.jwsl.hypervisor.virtio.TransportState;

import java.util.List;

/**
 * Everything a VM is besides its RAM, at one stop of all its vCPUs.
 *
 * @param key     what the snapshot was taken of ({@link SnapshotKey}); a restore needs the same
 * @param ram     guest RAM as {@code (guestBase, size)} ranges, stored one after the other in the memory file
 * @param vm      the in-kernel irqchip, PIT and clock
 * @param vcpus   every vCPU, by id
 * @param console the serial console
 * @param devices every virtio transport, in the order they are attached
 */
public record VmSnapshot(String key, List<long[]> ram, VmState vm, List<VcpuState> vcpus, Uart8250.State console,
                         List<TransportState> devices) {
    public VmSnapshot {
        ram = List.copyOf(ram);
        vcpus = List.copyOf(vcpus);
        devices = List.copyOf(devices);
    }

    /** Bytes of guest RAM, the memory file's size. */
    public long ramBytes() {
        return ram.stream().mapToLong(r -> r[1]).sum();
    }
}
