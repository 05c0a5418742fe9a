package dev.jwsl.hypervisor.vmm;

/** Why a VM ended. */
public sealed interface StopReason {
    /** The guest init reported its command's exit status through the exit port. */
    record GuestExit(int status) implements StopReason {}

    /**
     * The guest reset the machine (reboot through the i8042 reset line).
     *
     * @param initReady whether guest init had reported ready; a reset before that is a failed
     *                  boot (with {@code panic=-1} a kernel panic resets the machine)
     */
    record GuestReset(boolean initReady) implements StopReason {}

    /** The guest triple-faulted; {@code registers} is the faulting vCPU's state. */
    record TripleFault(int vcpu, String registers) implements StopReason {}

    /** KVM could not run the guest (internal error, failed entry, unknown exit). */
    record KvmError(int vcpu, String detail, String registers) implements StopReason {}

    /** The host asked the VM to stop. */
    record HostStop() implements StopReason {}

    /** The VMM itself failed while running the VM. */
    record VmmError(Throwable cause) implements StopReason {}
}
