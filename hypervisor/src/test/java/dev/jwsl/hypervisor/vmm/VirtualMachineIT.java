package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.testutil.TinyGuest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** KVM integration tests with hand-made guests: no kernel boot, so they are quick even here. */
class VirtualMachineIT {
    @TempDir
    Path dir;

    private VmConfig config(Path kernel, long memory) {
        return new VmConfig(kernel, null, "", memory, 1, new ByteArrayOutputStream());
    }

    @Test
    @Timeout(120)
    void aTripleFaultEndsTheVmWithRegisters() throws IOException {
        Path guest = TinyGuest.write(dir, "triple-fault", TinyGuest.TRIPLE_FAULT);
        try (VirtualMachine vm = VirtualMachine.create(config(guest, 64 << 20))) {
            StopReason r = vm.run();
            String faultingRip = "rip=%016x".formatted(TinyGuest.LOAD_ADDRESS);
            if (HostQuirks.isPvmHost()) {
                // PVM's instruction emulator may stop earlier, with an internal error.
                String registers = switch (r) {
                    case StopReason.TripleFault t -> t.registers();
                    case StopReason.KvmError k -> k.registers();
                    default -> throw new AssertionError("unexpected stop: " + r);
                };
                assertTrue(registers.contains("rip="), registers);
            } else {
                // Hardware KVM: KVM_EXIT_SHUTDOWN. VMX keeps the state, RIP at the ud2 that started
                // it; SVM re-initialises the VMCB on a shutdown intercept, so the vCPU reads as
                // reset (the reset vector f000:fff0).
                StopReason.TripleFault t = assertInstanceOf(StopReason.TripleFault.class, r);
                assertEquals(0, t.vcpu());
                assertTrue(t.registers().startsWith(faultingRip)
                        || t.registers().startsWith("rip=000000000000fff0") && t.registers().contains("cs=f000"),
                        t.registers());
            }
        }
    }

    @Test
    @Timeout(60)
    void stopFromAnotherThreadEndsARunningGuest() throws Exception {
        // jmp $ : spins in guest mode until the host stops it
        Path guest = TinyGuest.write(dir, "spin", new byte[] {(byte) 0xeb, (byte) 0xfe});
        try (VirtualMachine vm = VirtualMachine.create(config(guest, 64 << 20))) {
            Thread.ofPlatform().start(() -> {
                try {
                    Thread.sleep(500);
                } catch (InterruptedException ignored) {
                    // stop anyway
                }
                vm.stop();
            });
            assertInstanceOf(StopReason.HostStop.class, vm.run());
        }
    }

    @Test
    void moreMemoryThanTheHostHasIsRefused() throws IOException {
        Path guest = TinyGuest.write(dir, "k", TinyGuest.TRIPLE_FAULT);
        VmStartException e = assertThrows(VmStartException.class,
                () -> VirtualMachine.create(config(guest, 1L << 50)));
        assertEquals(VmStartException.Reason.CONFIG, e.reason());
    }
}
