package dev.jwsl.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code wsl}: run Linux commands in jwsl's managed utility VM. A thin front: options are parsed
 * here and everything else is {@link WslClient}.
 */
@Command(name = "wsl", mixinStandardHelpOptions = true, versionProvider = Wsl.Version.class,
        description = "Run a Linux command in the jwsl utility VM (started on demand).",
        footer = {"", "Exit status: the command's (128+N if killed by signal N); "
                + WslClient.EXIT_JWSL_FAILURE + ": jwsl failed (VM or service); " + WslClient.EXIT_USAGE + ": bad usage."})
public final class Wsl implements Callable<Integer> {
    @Option(names = {"-e", "--exec"}, description = "run CMD without the shell")
    boolean exec;

    @Option(names = "--cd", paramLabel = "DIR", description = "working directory in the guest")
    String cd = "";

    @Option(names = {"-u", "--user"}, paramLabel = "USER", description = "guest user (default: root)")
    String user = "";

    @Option(names = "--shutdown", description = "stop the utility VM")
    boolean shutdown;

    @Option(names = "--force", description = "with --shutdown: stop it without waiting for the guest")
    boolean force;

    @Option(names = "--status", description = "show the service and VM state")
    boolean status;

    @Parameters(paramLabel = "CMD", description = "command and arguments (default: a login shell)")
    List<String> command = new ArrayList<>();

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"jwsl 0.1.0", "Java " + Runtime.version()};
        }
    }

    @Override
    public Integer call() {
        WslClient client = new WslClient();
        if (shutdown) {
            return client.shutdown(force);
        }
        if (force) {
            throw new CommandLine.ParameterException(new CommandLine(this), "--force only goes with --shutdown");
        }
        if (status) {
            return client.status();
        }
        return client.run(command, exec, cd, user);
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
