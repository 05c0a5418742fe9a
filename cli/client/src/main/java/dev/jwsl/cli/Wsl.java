package dev.jwsl.cli;

import dev.jwsl.protocol.relay.RelayConstants;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code wsl}: run Linux commands in jwsl's distributions and manage them, with WSL's options.
 * A thin front: options are parsed here and everything else is {@link WslClient}.
 */
@Command(name = "wsl", versionProvider = Wsl.Version.class,
        description = "Run a Linux command in a jwsl distribution (the utility VM starts on demand).",
        footer = {"", "Distribution names are compared ignoring case, as on Windows: -d debian runs Debian.",
                "", "Exit status: the command's (128+N if killed by signal N); "
                + WslClient.EXIT_JWSL_FAILURE + ": jwsl failed (VM, service or bad input); " + WslClient.EXIT_USAGE
                + ": bad usage."})
public final class Wsl implements Callable<Integer> {
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help")
    boolean help;

    @Option(names = "--version", arity = "0..1", fallbackValue = "", paramLabel = "2",
            description = "show the version; with --import: the WSL version of the distro (2 only)")
    String version;

    @Option(names = {"-e", "--exec"}, description = "run CMD without the shell")
    boolean exec;

    @Option(names = "--cd", paramLabel = "DIR",
            description = "working directory in the guest ('~': home; default: this directory on the host share, else home)")
    String cd;

    @Option(names = {"-u", "--user"}, paramLabel = "USER", description = "user to run as (default: the distro's default user)")
    String user = "";

    @Option(names = {"-d", "--distribution"}, paramLabel = "NAME", description = "distro to run in (default: the default distro)")
    String distro = "";

    @Option(names = "--system", description = "run in the utility VM itself, not in a distro")
    boolean system;

    @Option(names = "--shutdown", description = "stop the utility VM and every distro")
    boolean shutdown;

    @Option(names = "--force", description = "with --shutdown: stop it without stopping the distros cleanly")
    boolean force;

    @Option(names = "--status", description = "show the service and VM state")
    boolean status;

    @Option(names = {"-l", "--list"}, description = "list the distros")
    boolean list;

    @Option(names = {"-v", "--verbose"}, description = "with --list: state and version too")
    boolean verbose;

    @Option(names = "--running", description = "with --list: only running distros")
    boolean running;

    @Option(names = {"-q", "--quiet"}, description = "with --list: names only")
    boolean quiet;

    @Option(names = "--install", arity = "0..1", fallbackValue = "Debian", paramLabel = "DISTRO",
            description = "install Debian 12 (debootstrap, cached), with a default user like yours")
    String install;

    @Option(names = "--import", arity = "3", paramLabel = "NAME DIR FILE",
            description = {"import a tar, tar.gz or tar.xz root file system (FILE '-': stdin) as NAME, its disk in DIR;",
                    "Ctrl-C (or the end of this wsl) cancels it and leaves DIR as it was"})
    List<String> importArgs;

    @Option(names = "--import-progress", paramLabel = "NAME",
            description = "follow the running import of NAME (started by another wsl) until it ends;"
                    + " Ctrl-C stops following; wsl --unregister NAME cancels it")
    String importProgress;

    @Option(names = "--vhd-size", paramLabel = "SIZE", converter = SizeConverter.class,
            description = "with --import: the disk's maximum size (default: defaultVhdSize, 1TB)")
    long vhdSize;

    @Option(names = "--import-in-place", arity = "2", paramLabel = "NAME IMAGE",
            description = "register an existing ext4 image as NAME")
    List<String> importInPlace;

    @Option(names = "--export", arity = "2", paramLabel = "NAME FILE",
            description = "write NAME's root file system to FILE ('-': stdout)")
    List<String> exportArgs;

    @Option(names = "--format", paramLabel = "FORMAT", description = "with --export: tar (default), tar.gz or tar.xz")
    String format = "tar";

    @Option(names = "--unregister", paramLabel = "NAME",
            description = "stop NAME, delete its disk and forget it; a NAME being imported: cancel the import")
    String unregister;

    @Option(names = {"-s", "--set-default"}, paramLabel = "NAME", description = "make NAME the default distro")
    String setDefault;

    @Option(names = {"-t", "--terminate"}, paramLabel = "NAME", description = "stop NAME")
    String terminate;

    @Option(names = "--manage", paramLabel = "NAME", description = "change NAME: with --resize or --set-default-user")
    String manage;

    @Option(names = "--resize", paramLabel = "SIZE", converter = SizeConverter.class,
            description = "with --manage: new disk size")
    long resize;

    @Option(names = "--set-default-user", paramLabel = "USER", description = "with --manage: default user")
    String defaultUser = "";

    @Parameters(paramLabel = "CMD", description = "command and arguments (default: a login shell)")
    List<String> command = new ArrayList<>();

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"jwsl 0.1.0", "Java " + Runtime.version()};
        }
    }

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(new CommandLine(this), message);
    }

    @Override
    public Integer call() {
        WslClient client = new WslClient();
        if (version != null && importArgs == null) {
            if (!version.isEmpty()) {
                throw usage("--version takes a value only with --import");
            }
            new CommandLine(this).printVersionHelp(System.out);
            return 0;
        }
        if (force && !shutdown) {
            throw usage("--force only goes with --shutdown");
        }
        if (shutdown) {
            return client.shutdown(force);
        }
        if (status) {
            return client.status();
        }
        if (list) {
            return client.list(verbose, running, quiet);
        }
        if (install != null) {
            return client.install(install);
        }
        if (importArgs != null) {
            if (version != null && !version.equals("2")) {
                throw usage("jwsl runs WSL 2 distributions only (--version 2)");
            }
            return client.importDistro(importArgs.get(0), importArgs.get(1), importArgs.get(2), vhdSize);
        }
        if (importProgress != null) {
            return client.followImport(importProgress);
        }
        if (importInPlace != null) {
            return client.importInPlace(importInPlace.get(0), importInPlace.get(1));
        }
        if (exportArgs != null) {
            return client.export(exportArgs.get(0), exportArgs.get(1), format);
        }
        if (unregister != null) {
            return client.unregister(unregister);
        }
        if (setDefault != null) {
            return client.setDefault(setDefault);
        }
        if (terminate != null) {
            return client.terminate(terminate);
        }
        if (manage != null) {
            if (resize == 0 && defaultUser.isEmpty()) {
                throw usage("--manage needs --resize SIZE or --set-default-user USER");
            }
            return client.manage(manage, resize, defaultUser);
        }
        if (system && !distro.isEmpty()) {
            throw usage("--system and --distribution exclude each other");
        }
        // As WSL starts in the Windows directory it was run from: the guest maps the host directory
        // through the distro's shares (wslpath -u) and falls back to home.
        String cwd = cd == null ? RelayConstants.HOST_CWD + System.getProperty("user.dir") : cd.equals("~") ? "" : cd;
        return client.run(command, exec, cwd, user, distro, system);
    }

    public static void main(String[] args) {
        CommandLine cl = new CommandLine(new Wsl()).setStopAtPositional(true);
        cl.setParameterExceptionHandler((ex, a) -> {
            System.err.println("wsl: " + ex.getMessage());
            System.err.println("Try 'wsl --help'.");
            return WslClient.EXIT_USAGE;
        });
        cl.setExecutionExceptionHandler((ex, c, p) -> {
            System.err.println("wsl: " + ex);
            return WslClient.EXIT_JWSL_FAILURE;
        });
        System.exit(cl.execute(args));
    }
}
