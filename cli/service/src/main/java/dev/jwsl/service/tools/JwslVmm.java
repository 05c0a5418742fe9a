package dev.jwsl.service.tools;

import dev.jwsl.protocol.ByteSize;
import dev.jwsl.protocol.relay.HostTerminal;

import dev.jwsl.hypervisor.vmm.GuestCommand;
import dev.jwsl.hypervisor.vmm.KernelCmdline;
import dev.jwsl.hypervisor.vmm.StopReason;
import dev.jwsl.hypervisor.vmm.VirtualMachine;
import dev.jwsl.hypervisor.net.NetConfig;
import dev.jwsl.service.net.PortForwarder;
import dev.jwsl.hypervisor.vmm.VmConfig;
import dev.jwsl.hypervisor.vmm.VmStartException;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine.ParseResult;

import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code jwsl-vmm}: boots the jwsl kernel and init, runs one command in the VM with this terminal,
 * and exits with the command's status. Exit 125 means the VM could not start or crashed.
 *
 * <p>Options go through picocli's programmatic model, as {@code wsl}'s do: its annotations cost
 * reflection and a proxy each at every start (issue 18: the VMM's start-up CPU).
 */
public final class JwslVmm {
    /** Exit status when the VM could not start or died. */
    public static final int EXIT_VM_FAILED = 125;

    static CommandSpec spec() {
        CommandSpec spec = CommandSpec.create().name("jwsl-vmm").version("jwsl-vmm 0.1.0");
        spec.usageMessage().description("Boot a Linux VM on KVM, run CMD in it and exit with its status.")
                .footer("", "Exit status: CMD's status; 125 if the VM could not start or crashed; 2 for bad usage.");
        spec.addOption(OptionSpec.builder("-h", "--help").usageHelp(true).description("Show this help message and exit.").build());
        spec.addOption(OptionSpec.builder("-V", "--version").versionHelp(true).description("Print version information and exit.").build());
        option(spec, "--kernel", "K", Path.class, "bzImage or ELF vmlinux (default: the built jwsl kernel)");
        option(spec, "--initrd", "I", Path.class, "initramfs (default: the built jwsl initramfs; '' for none)");
        option(spec, "--memory", "SIZE", String.class, "guest RAM, e.g. 512M or 2G (default: 512M)");
        option(spec, "--cpus", "N", int.class, "vCPUs (default: 2)");
        option(spec, "--cmdline", "ARGS", String.class, "extra kernel command-line parameters");
        repeatable(spec, "--disk", "IMAGE[,ro]", "a raw disk image as a virtio-blk device (repeatable; serials disk0, disk1, ...)");
        repeatable(spec, "--share", "TAG=DIR", "a host directory as a virtio-9p device (repeatable); in the guest: "
                + "mount -t 9p -o trans=virtio,version=9p2000.L TAG MOUNTPOINT");
        flag(spec, "--net", false, "a virtio-net device on user-mode networking (libslirp): NAT to the "
                + "host's networks, the host's loopback at 10.0.2.2 and fd00:6a77:736c::2 (host.internal)");
        flag(spec, "--forward-ports", false, "localhost forwarding as the service does it: guest TCP "
                + "listeners at the host's 127.0.0.1 and ::1, relayed over vsock (the guest must run '/init jwsl-ports')");
        option(spec, "--snapshot", "DIR", Path.class, "boot, and when init is ready write a snapshot of the VM to DIR (replacing one there)");
        option(spec, "--restore", "DIR", Path.class, "start from the snapshot in DIR if it was taken of this kernel, "
                + "initramfs, command line (CMD included), resources and jwsl; otherwise boot and write one there");
        flag(spec, "--print-cmdline", true, "print the kernel command line and exit");
        spec.addPositional(PositionalParamSpec.builder().paramLabel("CMD").arity("0..*").type(List.class).auxiliaryTypes(String.class)
                .description("command and arguments to run in the guest (default: a shell)").build());
        return spec;
    }

    private static void option(CommandSpec spec, String name, String label, Class<?> type, String description) {
        spec.addOption(OptionSpec.builder(name).paramLabel(label).type(type).description(description).build());
    }

    private static void repeatable(CommandSpec spec, String name, String label, String description) {
        spec.addOption(OptionSpec.builder(name).arity("1").paramLabel(label).type(List.class).auxiliaryTypes(String.class)
                .description(description).build());
    }

    private static void flag(CommandSpec spec, String name, boolean hidden, String description) {
        spec.addOption(OptionSpec.builder(name).type(boolean.class).hidden(hidden).description(description).build());
    }

    private final CommandLine commandLine;
    Path kernel;
    Path initrd;
    String memory;
    int cpus;
    String extraCmdline;
    List<String> disks;
    List<String> shares;
    boolean net;
    boolean forwardPorts;
    Path snapshotDir;
    Path restoreDir;
    boolean printCmdline;
    List<String> command;

    private JwslVmm(CommandLine commandLine, ParseResult r) {
        this.commandLine = commandLine;
        kernel = r.matchedOptionValue("--kernel", envPath("JWSL_KERNEL"));
        initrd = r.matchedOptionValue("--initrd", envPath("JWSL_INITRD"));
        memory = r.matchedOptionValue("--memory", "512M");
        cpus = r.matchedOptionValue("--cpus", 2);
        extraCmdline = r.matchedOptionValue("--cmdline", "");
        disks = r.matchedOptionValue("--disk", List.of());
        shares = r.matchedOptionValue("--share", List.of());
        net = r.hasMatchedOption("--net");
        forwardPorts = r.hasMatchedOption("--forward-ports");
        snapshotDir = r.matchedOptionValue("--snapshot", null);
        restoreDir = r.matchedOptionValue("--restore", null);
        printCmdline = r.hasMatchedOption("--print-cmdline");
        command = r.matchedPositionalValue(0, List.of());
    }

    /**
     * Parses {@code args}.
     *
     * @throws CommandLine.ParameterException on bad usage, with the message to show
     */
    static JwslVmm parse(String... args) {
        CommandLine cl = new CommandLine(spec());
        return new JwslVmm(cl, cl.parseArgs(args));
    }

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(commandLine, message);
    }

    private static Path envPath(String name) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? null : Path.of(v);
    }

    /** Prints the help or version, or runs the VM; returns the exit status. */
    int call() {
        if (commandLine.isUsageHelpRequested()) {
            commandLine.usage(System.out);
            return 0;
        }
        if (commandLine.isVersionHelpRequested()) {
            commandLine.printVersionHelp(System.out);
            return 0;
        }
        boolean tty = HostTerminal.isInteractive();
        String cmdline = cmdline(tty);
        if (printCmdline) {
            // what the guest init sees; the VMM puts the network's parameter before the rest
            System.out.println(net ? new NetConfig().kernelParam() + " " + cmdline : cmdline);
            return 0;
        }
        if (kernel == null || kernel.toString().isEmpty()) {
            throw usage("no kernel: pass --kernel or build one "
                    + "with scripts/build (bin/jwsl-vmm finds it)");
        }
        OutputStream console = new FileOutputStream(FileDescriptor.out);
        Path initramfs = initrd == null || initrd.toString().isEmpty() ? null : initrd;
        List<VmConfig.Disk> blk = new ArrayList<>();
        for (String d : disks) {
            boolean ro = d.endsWith(",ro");
            String path = ro ? d.substring(0, d.length() - 3) : d;
            if (path.isEmpty()) {
                throw usage("--disk needs an image path");
            }
            blk.add(new VmConfig.Disk(Path.of(path), ro, "disk" + blk.size()));
        }
        List<VmConfig.FileShare> p9 = new ArrayList<>();
        for (String s : shares) {
            int eq = s.indexOf('=');
            if (eq <= 0 || eq == s.length() - 1) {
                throw usage("--share needs TAG=DIR, got " + s);
            }
            Path dir = Path.of(s.substring(eq + 1));
            if (!java.nio.file.Files.isDirectory(dir)) {
                throw usage("--share: not a directory: " + dir);
            }
            p9.add(new VmConfig.FileShare(s.substring(0, eq), dir));
        }
        long memoryBytes;
        try {
            memoryBytes = ByteSize.parse(memory);
        } catch (IllegalArgumentException e) {
            throw usage("--memory: " + e.getMessage());
        }
        VmConfig config = new VmConfig(kernel, initramfs, cmdline, memoryBytes, cpus, console).withDisks(blk).withShares(p9)
                .withNetwork(net ? new NetConfig() : null);
        if (snapshotDir != null && restoreDir != null) {
            throw usage("--snapshot and --restore exclude each other");
        }
        if (snapshotDir != null || restoreDir != null) {
            config = config.withSnapshot(new VmConfig.Snapshot(restoreDir != null ? restoreDir : snapshotDir, restoreDir != null));
        }
        Path vsockDir = null;
        try {
            if (forwardPorts) {
                vsockDir = java.nio.file.Files.createTempDirectory("jwsl-vmm");
                config = config.withVsock(new VmConfig.Vsock(vsockDir.resolve("vsock")));
            }
            try (VirtualMachine vm = VirtualMachine.create(config);
                 HostTerminal terminal = tty ? HostTerminal.raw() : HostTerminal.none();
                 PortForwarder forwarder = forwardPorts ? new PortForwarder(config.vsock().udsPath(), false) : null) {
                if (forwarder != null) {
                    Thread.ofPlatform().name("port-watch").daemon().start(() -> {
                        try {
                            if (vm.awaitGuestReady()) {
                                forwarder.follow(() -> true);
                            }
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    });
                }
                ConsoleInput.start(vm, System.in, !tty);
                return report(vm.run());
            }
        } catch (VmStartException e) {
            System.err.println("jwsl-vmm: " + e.getMessage());
            return EXIT_VM_FAILED;
        } catch (java.io.IOException e) {
            System.err.println("jwsl-vmm: " + e.getMessage());
            return EXIT_VM_FAILED;
        } finally {
            if (vsockDir != null) {
                try (var files = java.nio.file.Files.list(vsockDir)) {
                    for (Path f : files.toList()) {
                        java.nio.file.Files.deleteIfExists(f);
                    }
                    java.nio.file.Files.deleteIfExists(vsockDir);
                } catch (java.io.IOException ignored) {
                    // a temporary directory left behind
                }
            }
        }
    }

    String cmdline(boolean tty) {
        int[] size = tty ? HostTerminal.windowSize() : new int[] {0, 0};
        return KernelCmdline.build(extraCmdline,
                GuestCommand.kernelParams(command, tty, System.getenv("TERM"), size[0], size[1]));
    }

    private static int report(StopReason reason) {
        return switch (reason) {
            case StopReason.GuestExit e -> e.status();
            case StopReason.GuestReset r when r.initReady() -> {
                System.err.println("jwsl-vmm: guest rebooted");
                yield 0;
            }
            case StopReason.GuestReset r -> {
                System.err.println("jwsl-vmm: the guest reset before its init started (a kernel panic?"
                        + " run with --cmdline loglevel=7 to see the boot)");
                yield EXIT_VM_FAILED;
            }
            case StopReason.HostStop s -> {
                System.err.println("jwsl-vmm: VM stopped");
                yield EXIT_VM_FAILED;
            }
            case StopReason.TripleFault t -> {
                System.err.println("jwsl-vmm: guest triple fault on vCPU " + t.vcpu() + "; " + t.registers());
                yield EXIT_VM_FAILED;
            }
            case StopReason.KvmError k -> {
                System.err.println("jwsl-vmm: " + k.detail() + " on vCPU " + k.vcpu() + "; " + k.registers());
                yield EXIT_VM_FAILED;
            }
            case StopReason.VmmError v -> {
                System.err.println("jwsl-vmm: VMM failure: " + v.cause());
                yield EXIT_VM_FAILED;
            }
        };
    }

    public static void main(String[] args) {
        // the VMM's log lines (a snapshot restored or not, and why) as one line each on stderr
        System.setProperty("java.util.logging.SimpleFormatter.format", "jwsl-vmm: %5$s%6$s%n");
        int status;
        try {
            status = parse(args).call();
        } catch (CommandLine.ParameterException e) {
            System.err.println("jwsl-vmm: " + e.getMessage());
            System.err.println("Try 'jwsl-vmm --help'.");
            status = 2;
        } catch (RuntimeException e) {
            System.err.println("jwsl-vmm: " + e);
            status = EXIT_VM_FAILED;
        }
        System.exit(status);
    }
}
