package dev.jwsl.cli;

import dev.jwsl.protocol.relay.RelayConstants;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine.ParseResult;

import java.util.List;

/**
 * {@code wsl}: run Linux commands in jwsl's distributions and manage them, with WSL's options.
 * A thin front: options are parsed here and everything else is {@link WslClient}.
 *
 * <p>The options are built with picocli's programmatic model, not its annotations: reading
 * annotations (reflection, a proxy per annotation) cost ~100 ms of every start on the host, and
 * about a second under emulation, for a command that users run all day (issue 29).
 */
public final class Wsl {
    private static final String FOOTER_EXIT = "Exit status: the command's (128+N if killed by signal N); "
            + WslClient.EXIT_JWSL_FAILURE + ": jwsl failed (VM, service or bad input); " + WslClient.EXIT_USAGE + ": bad usage.";

    /** The command line's model: every option, the command, the help text. */
    static CommandSpec spec() {
        CommandSpec spec = CommandSpec.create().name("wsl");
        spec.usageMessage()
                .description("Run a Linux command in a jwsl distribution (the utility VM starts on demand).")
                .footer("", "Distribution names are compared ignoring case, as on Windows: -d debian runs Debian.", "", FOOTER_EXIT);
        // "@FILE" is an argument like any other (a guest command's, a file name), never a file of
        // arguments to expand on the host; wsl-native passes it as it is too.
        spec.parser().stopAtPositional(true).expandAtFiles(false);
        spec.addOption(OptionSpec.builder("-h", "--help").usageHelp(true).description("show this help").build());
        spec.addOption(OptionSpec.builder("--version").arity("0..1").fallbackValue("").paramLabel("2").type(String.class)
                .description("show the version; with --import: the WSL version of the distro (2 only)").build());
        flag(spec, "run CMD without the shell", "-e", "--exec");
        value(spec, "DIR", "working directory in the guest ('~': home; default: this directory on the host share, else home)", "--cd");
        value(spec, "USER", "user to run as (default: the distro's default user)", "-u", "--user");
        value(spec, "NAME", "distro to run in (default: the default distro)", "-d", "--distribution");
        flag(spec, "run in the utility VM itself, not in a distro", "--system");
        flag(spec, "stop the utility VM and every distro", "--shutdown");
        flag(spec, "with --shutdown: stop it without stopping the distros cleanly", "--force");
        flag(spec, "show the service and VM state", "--status");
        flag(spec, "list the distros", "-l", "--list");
        flag(spec, "with --list: state and version too", "-v", "--verbose");
        flag(spec, "with --list: only running distros", "--running");
        flag(spec, "with --list: names only", "-q", "--quiet");
        spec.addOption(OptionSpec.builder("--install").arity("0..1").fallbackValue("Debian").paramLabel("DISTRO").type(String.class)
                .description("install Debian 12 (debootstrap, cached), with a default user like yours").build());
        values(spec, "3", "NAME DIR FILE", "--import",
                "import a tar, tar.gz or tar.xz root file system (FILE '-': stdin) as NAME, its disk in DIR;",
                "Ctrl-C (or the end of this wsl) cancels it and leaves DIR as it was");
        value(spec, "NAME", "follow the running import of NAME (started by another wsl) until it ends;"
                + " Ctrl-C stops following; wsl --unregister NAME cancels it", "--import-progress");
        size(spec, "with --import: the disk's maximum size (default: defaultVhdSize, 1TB)", "--vhd-size");
        values(spec, "2", "NAME IMAGE", "--import-in-place", "register an existing ext4 image as NAME");
        values(spec, "2", "NAME FILE", "--export", "write NAME's root file system to FILE ('-': stdout)");
        value(spec, "FORMAT", "with --export: tar (default), tar.gz or tar.xz", "--format");
        value(spec, "NAME", "stop NAME, delete its disk and forget it; a NAME being imported: cancel the import", "--unregister");
        value(spec, "NAME", "make NAME the default distro", "-s", "--set-default");
        value(spec, "NAME", "stop NAME", "-t", "--terminate");
        value(spec, "NAME", "change NAME: with --resize or --set-default-user", "--manage");
        size(spec, "with --manage: new disk size", "--resize");
        value(spec, "USER", "with --manage: default user", "--set-default-user");
        spec.addPositional(PositionalParamSpec.builder().paramLabel("CMD").arity("0..*").type(List.class).auxiliaryTypes(String.class)
                .description("command and arguments (default: a login shell)").build());
        return spec;
    }

    private static void flag(CommandSpec spec, String description, String... names) {
        spec.addOption(OptionSpec.builder(names).type(boolean.class).description(description).build());
    }

    private static void value(CommandSpec spec, String label, String description, String... names) {
        spec.addOption(OptionSpec.builder(names).paramLabel(label).type(String.class).description(description).build());
    }

    private static void values(CommandSpec spec, String arity, String label, String name, String... description) {
        spec.addOption(OptionSpec.builder(name).arity(arity).paramLabel(label).type(List.class).auxiliaryTypes(String.class)
                .description(description).build());
    }

    private static void size(CommandSpec spec, String description, String name) {
        spec.addOption(OptionSpec.builder(name).paramLabel("SIZE").type(long.class).converters(new SizeConverter())
                .description(description).build());
    }

    private final CommandLine commandLine;
    private final ParseResult parsed;

    private Wsl(CommandLine commandLine, ParseResult parsed) {
        this.commandLine = commandLine;
        this.parsed = parsed;
    }

    /**
     * Parses {@code args}.
     *
     * @throws CommandLine.ParameterException on bad usage, with the message to show
     */
    static Wsl parse(String... args) {
        CommandLine cl = new CommandLine(spec());
        return new Wsl(cl, cl.parseArgs(args));
    }

    boolean has(String option) {
        return parsed.hasMatchedOption(option);
    }

    <T> T value(String option, T absent) {
        return parsed.matchedOptionValue(option, absent);
    }

    /** The command and its arguments: what follows the options (empty: a login shell). */
    List<String> command() {
        return parsed.matchedPositionalValue(0, List.of());
    }

    /** Prints the usage help, version or runs what was asked; returns the exit status. */
    int run() {
        if (commandLine.isUsageHelpRequested()) {
            commandLine.usage(System.out);
            return 0;
        }
        WslClient client = new WslClient();
        String version = value("--version", null);
        List<String> importArgs = value("--import", null);
        if (version != null && importArgs == null) {
            if (!version.isEmpty()) {
                throw usage("--version takes a value only with --import");
            }
            System.out.print(versionText());
            return 0;
        }
        boolean shutdown = has("--shutdown");
        if (has("--force") && !shutdown) {
            throw usage("--force only goes with --shutdown");
        }
        if (shutdown) {
            return client.shutdown(has("--force"));
        }
        if (has("--status")) {
            return client.status();
        }
        if (has("--list")) {
            return client.list(has("--verbose"), has("--running"), has("--quiet"));
        }
        String install = value("--install", null);
        if (install != null) {
            return client.install(install);
        }
        if (importArgs != null) {
            if (version != null && !version.equals("2")) {
                throw usage("jwsl runs WSL 2 distributions only (--version 2)");
            }
            return client.importDistro(importArgs.get(0), importArgs.get(1), importArgs.get(2), value("--vhd-size", 0L));
        }
        String importProgress = value("--import-progress", null);
        if (importProgress != null) {
            return client.followImport(importProgress);
        }
        List<String> importInPlace = value("--import-in-place", null);
        if (importInPlace != null) {
            return client.importInPlace(importInPlace.get(0), importInPlace.get(1));
        }
        List<String> exportArgs = value("--export", null);
        if (exportArgs != null) {
            return client.export(exportArgs.get(0), exportArgs.get(1), value("--format", "tar"));
        }
        String unregister = value("--unregister", null);
        if (unregister != null) {
            return client.unregister(unregister);
        }
        String setDefault = value("--set-default", null);
        if (setDefault != null) {
            return client.setDefault(setDefault);
        }
        String terminate = value("--terminate", null);
        if (terminate != null) {
            return client.terminate(terminate);
        }
        String manage = value("--manage", null);
        if (manage != null) {
            long resize = value("--resize", 0L);
            String defaultUser = value("--set-default-user", "");
            if (resize == 0 && defaultUser.isEmpty()) {
                throw usage("--manage needs --resize SIZE or --set-default-user USER");
            }
            return client.manage(manage, resize, defaultUser);
        }
        String distro = value("--distribution", "");
        boolean system = has("--system");
        if (system && !distro.isEmpty()) {
            throw usage("--system and --distribution exclude each other");
        }
        // As WSL starts in the Windows directory it was run from: the guest maps the host directory
        // through the distro's shares (wslpath -u) and falls back to home.
        String cd = value("--cd", null);
        String cwd = cd == null ? RelayConstants.HOST_CWD + System.getProperty("user.dir") : cd.equals("~") ? "" : cd;
        return client.run(command(), has("--exec"), cwd, value("--user", ""), distro, system);
    }

    /**
     * What {@code --version} prints; wsl-native prints the same (WslNativeTest). The property, not
     * Runtime.version(): its toString runs a stream pipeline.
     */
    static String versionText() {
        return "jwsl 0.1.0\nJava " + System.getProperty("java.runtime.version") + "\n";
    }

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(commandLine, message);
    }

    public static void main(String[] args) {
        int status;
        try {
            Wsl wsl = parse(args);
            Timing.reached("parsed");
            status = wsl.run();
        } catch (CommandLine.ParameterException e) {
            System.err.println("wsl: " + e.getMessage());
            System.err.println("Try 'wsl --help'.");
            status = WslClient.EXIT_USAGE;
        } catch (RuntimeException e) {
            System.err.println("wsl: " + e);
            status = WslClient.EXIT_JWSL_FAILURE;
        }
        Timing.report(System.err);
        System.exit(status);
    }
}
