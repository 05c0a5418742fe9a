package dev.jwsl.cli;

import dev.jwsl.protocol.relay.CreateRequest;
import dev.jwsl.protocol.relay.HostTerminal;
import dev.jwsl.protocol.relay.HybridVsock;
import dev.jwsl.protocol.relay.RelayConstants;
import dev.jwsl.protocol.relay.RelaySession;
import dev.jwsl.protocol.relay.UnixStream;
import dev.jwsl.protocol.ServicePaths;
import dev.jwsl.protocol.JwslMessage;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** What {@code wsl} does: talk to the service, then relay one command with this terminal. */
final class WslClient {
    /** jwsl itself failed: no service, VM crashed, guest refused the command. */
    static final int EXIT_JWSL_FAILURE = 1;
    static final int EXIT_USAGE = 2;
    /** 128 + SIGPIPE: what a shell reports for a writer whose reader closed the pipe. */
    static final int EXIT_BROKEN_PIPE = 141;
    /** Environment passed into the guest: terminal and locale, not host paths. */
    private static final List<String> FORWARDED_ENV = List.of("TERM", "LANG", "LC_ALL", "COLORTERM");

    private final ServicePaths paths = ServicePaths.forCurrentUser();

    private ServiceClient service() throws IOException {
        String launcher = System.getenv("JWSL_SERVICE_CMD");
        if (launcher == null || launcher.isBlank()) {
            throw new IOException("JWSL_SERVICE_CMD is not set: start wsl through bin/wsl");
        }
        ServiceClient client = ServiceClient.connect(paths, List.of("/bin/sh", "-c", launcher));
        Timing.reached("service-connected");
        return client;
    }

    int status() {
        try (ServiceClient s = service()) {
            JwslMessage.Response r = s.call(JwslMessage.Status::new);
            if (r instanceof JwslMessage.StatusReply st) {
                // Concatenation, not printf: java.util.Formatter's first use costs more than the call.
                System.out.print("VM: " + st.vmState() + "\nSessions: " + st.sessions() + "\nUptime: " + st.uptimeMs() / 1000
                        + " s\nIdle timeout: " + st.idleTimeoutMs() / 1000 + " s\nKernel: " + st.kernel() + "\n");
                return 0;
            }
            return fail(r);
        } catch (IOException e) {
            return fail(e.getMessage());
        }
    }

    int shutdown(boolean force) {
        try (ServiceClient s = service()) {
            JwslMessage.Response r = s.call(tx -> new JwslMessage.Shutdown(tx, force));
            return r instanceof JwslMessage.Done ? 0 : fail(r);
        } catch (IOException e) {
            return fail(e.getMessage());
        }
    }

    int run(List<String> command, boolean exec, String cwd, String user, String distro, boolean system) {
        boolean tty = HostTerminal.isInteractive();
        try (ServiceClient s = service()) {
            UnixStream early = startRelay();
            JwslMessage.Response r;
            try {
                r = s.call(tx -> new JwslMessage.EnsureVm(tx, distro, system));
            } catch (IOException e) {
                closeQuietly(early);
                throw e;
            }
            if (!(r instanceof JwslMessage.VmReady ready)) {
                closeQuietly(early);
                return fail(r);
            }
            Timing.reached("vm-ready");
            int[] size = tty ? HostTerminal.windowSize() : new int[] {0, 0};
            String runAs = user.isEmpty() ? ready.defaultUser() : user;
            CreateRequest req = new CreateRequest(tty, size[0], size[1], runAs, cwd, ready.distro(), argv(command, exec),
                    env());
            try (RelaySession session = relay(early, ready);
                 HostTerminal terminal = tty ? HostTerminal.raw() : null) {
                Timing.reached("relay-connected");
                if (tty) {
                    watchWindowSize(session, size);
                }
                return session.run(req, new FileInputStream(FileDescriptor.in), new FileOutputStream(FileDescriptor.out),
                        new FileOutputStream(FileDescriptor.err), Timing.session());
            }
        } catch (IllegalArgumentException | IOException e) {
            if ("Broken pipe".equals(e.getMessage())) {
                return EXIT_BROKEN_PIPE; // our stdout's reader went away (`wsl -- cmd | head`): quietly, as SIGPIPE
            }
            return fail(e.getMessage());
        }
    }

    /**
     * Opens the relay connection before the service has said the VM runs, so that the guest
     * accepts it while the service answers (a round trip through the VMM and the guest less per
     * call, issue 29); null when no VM listens. Nothing is sent to the guest on it before the
     * service has answered.
     */
    private UnixStream startRelay() {
        try {
            return HybridVsock.start(paths.vsockSocket(), RelayConstants.PORT);
        } catch (IOException e) {
            return null; // no VM yet: the service starts one and the relay connects after
        }
    }

    /**
     * The relay session for {@code ready}: on the early connection when it reached that VM, else
     * on a new one. An early connection can have reached a VM that stopped before the service
     * answered (an idle shutdown, --shutdown from elsewhere): no command was sent on it, so a new
     * connection to the VM the service vouches for is not a retry. The guest waits for the
     * command on it however long the service takes to answer (a distro's first start).
     */
    private RelaySession relay(UnixStream early, JwslMessage.VmReady ready) throws IOException {
        Path socket = Path.of(ready.vsockSocket());
        if (early != null) {
            if (socket.equals(paths.vsockSocket()) && ready.relayPort() == RelayConstants.PORT) {
                try {
                    return RelaySession.finish(early, ready.relayPort());
                } catch (IOException e) {
                    // that VM went away (the stream is closed): connect to the one that runs now
                }
            } else {
                closeQuietly(early);
            }
        }
        return RelaySession.connect(socket, ready.relayPort());
    }

    private static void closeQuietly(UnixStream ch) {
        if (ch != null) {
            ch.close(); // nothing was sent on it
        }
    }

    /** {@code --list}: WSL's layouts; {@code --quiet} names only, {@code --verbose} a table. */
    int list(boolean verbose, boolean runningOnly, boolean quiet) {
        try (ServiceClient s = service()) {
            JwslMessage.Response r = s.call(JwslMessage.ListDistros::new);
            if (!(r instanceof JwslMessage.DistroList list)) {
                return fail(r);
            }
            List<JwslMessage.DistroInfo> shown = list.distros().stream()
                    .filter(d -> !runningOnly || d.state().equals("Running")).toList();
            if (shown.isEmpty() && !quiet) {
                System.out.println(runningOnly ? "There are no running distributions."
                        : "jwsl has no installed distributions. Install one with 'wsl --install' or 'wsl --import'.");
                return runningOnly ? 0 : EXIT_JWSL_FAILURE;
            }
            if (quiet) {
                shown.forEach(d -> System.out.println(d.name()));
            } else if (verbose) {
                int w = Math.max(4, shown.stream().mapToInt(d -> d.name().length()).max().orElse(4));
                System.out.printf("  %-" + w + "s    %-12s %s%n", "NAME", "STATE", "VERSION");
                for (JwslMessage.DistroInfo d : shown) {
                    System.out.printf("%s %-" + w + "s    %-12s %d%n", d.isDefault() ? "*" : " ", d.name(), d.state(),
                            d.version());
                }
            } else {
                System.out.println("jwsl distributions:");
                for (JwslMessage.DistroInfo d : shown) {
                    System.out.println(d.name() + (d.isDefault() ? " (Default)" : ""));
                }
            }
            return 0;
        } catch (IOException e) {
            return fail(e.getMessage());
        }
    }

    /** {@code --import NAME DIR FILE|-}: stdin is spooled into DIR first (the VM reads a file). */
    int importDistro(String name, String installDir, String file, long diskBytes) {
        Path dir = Path.of(installDir).toAbsolutePath();
        Path spool = null;
        try {
            Path archive;
            if (file.equals("-")) {
                java.nio.file.Files.createDirectories(dir);
                spool = java.nio.file.Files.createTempFile(dir, ".stdin-", ".tar");
                try (java.io.OutputStream o = java.nio.file.Files.newOutputStream(spool)) {
                    new FileInputStream(FileDescriptor.in).transferTo(o);
                }
                archive = spool;
            } else {
                archive = Path.of(file).toAbsolutePath();
            }
            try (ServiceClient s = service(); ProgressBar bar = new ProgressBar("Importing " + name)) {
                JwslMessage.Response r = s.call(tx -> new JwslMessage.Import(tx, name, dir.toString(),
                        archive.toString(), diskBytes), bar);
                return r instanceof JwslMessage.Done ? 0 : fail(r);
            }
        } catch (IOException e) {
            return fail(e.getMessage());
        } finally {
            deleteQuietly(spool);
        }
    }

    /**
     * {@code --install [Debian]}: builds (or takes the cached) Debian 12 rootfs, imports it, adds
     * a regular user named like the host user (sudo, no password) and makes both the defaults.
     */
    int install(String name) {
        if (!name.equalsIgnoreCase("Debian")) {
            return fail("jwsl installs Debian only: import other distributions with --import");
        }
        String home = System.getenv("JWSL_HOME");
        if (home == null || home.isBlank()) {
            return fail("JWSL_HOME is not set: run wsl through bin/wsl");
        }
        try {
            Process build = new ProcessBuilder(Path.of(home, "scripts", "build-debian-rootfs").toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).redirectInput(ProcessBuilder.Redirect.INHERIT).start();
            String tarball = new String(build.getInputStream().readAllBytes()).strip();
            if (build.waitFor() != 0 || tarball.isEmpty()) {
                return fail("building the Debian root file system failed");
            }
            int st = importDistro(name, ServicePaths.dataDir().resolve("distros").resolve(name).toString(), tarball, 0);
            if (st != 0) {
                return st;
            }
            String hostUser = System.getProperty("user.name");
            String user = hostUser.equals("root") || !hostUser.matches("[a-z_][a-z0-9_-]{0,31}") ? "wsl" : hostUser;
            st = run(List.of("sh", "-c", "useradd -m -s /bin/bash -G sudo \"$1\" && passwd -q -d \"$1\"", "sh", user),
                    true, "", "root", name, false);
            if (st != 0) {
                return fail("creating the user " + user + " in " + name + " failed");
            }
            st = manage(name, 0, user);
            return st != 0 ? st : setDefault(name);
        } catch (IOException e) {
            return fail(e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return fail("interrupted");
        }
    }

    /** {@code --import-progress NAME}: another client's running import, followed until it ends. */
    int followImport(String name) {
        try (ServiceClient s = service(); ProgressBar bar = new ProgressBar("Importing " + name)) {
            JwslMessage.Response r = s.call(tx -> new JwslMessage.FollowImport(tx, name), bar);
            return r instanceof JwslMessage.Done ? 0 : fail(r);
        } catch (IOException e) {
            return fail(e.getMessage());
        }
    }

    int importInPlace(String name, String image) {
        return simple(tx -> new JwslMessage.ImportInPlace(tx, name, Path.of(image).toAbsolutePath().toString()));
    }

    /** {@code --export NAME FILE|-}: for stdout the service writes a temporary file that is copied out. */
    int export(String name, String file, String format) {
        Path temp = null;
        try {
            Path out;
            if (file.equals("-")) {
                temp = java.nio.file.Files.createTempFile("jwsl-export-", "." + format);
                out = temp;
            } else {
                out = Path.of(file).toAbsolutePath();
            }
            try (ServiceClient s = service(); ProgressBar bar = new ProgressBar("Exporting " + name)) {
                JwslMessage.Response r = s.call(tx -> new JwslMessage.Export(tx, name, out.toString(), format), bar);
                if (!(r instanceof JwslMessage.Done)) {
                    return fail(r);
                }
            }
            if (temp != null) {
                try (java.io.InputStream in = java.nio.file.Files.newInputStream(temp)) {
                    java.io.OutputStream stdout = new FileOutputStream(FileDescriptor.out);
                    in.transferTo(stdout);
                    stdout.flush();
                }
            }
            return 0;
        } catch (IOException e) {
            return fail(e.getMessage());
        } finally {
            deleteQuietly(temp);
        }
    }

    int unregister(String name) {
        return simple(tx -> new JwslMessage.Unregister(tx, name));
    }

    int setDefault(String name) {
        return simple(tx -> new JwslMessage.SetDefault(tx, name));
    }

    int terminate(String name) {
        return simple(tx -> new JwslMessage.Terminate(tx, name));
    }

    int manage(String name, long resizeBytes, String defaultUser) {
        return simple(tx -> new JwslMessage.Manage(tx, name, resizeBytes, defaultUser));
    }

    private int simple(java.util.function.LongFunction<JwslMessage.Request> request) {
        try (ServiceClient s = service()) {
            JwslMessage.Response r = s.call(request);
            return r instanceof JwslMessage.Done ? 0 : fail(r);
        } catch (IOException e) {
            return fail(e.getMessage());
        }
    }

    private static void deleteQuietly(Path p) {
        if (p != null) {
            try {
                java.nio.file.Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // a temporary file: nothing else to do
            }
        }
    }

    /** Without -e the command runs through the shell, each argument quoted so it arrives intact. */
    static List<String> argv(List<String> command, boolean exec) {
        if (exec || command.isEmpty()) {
            return command;
        }
        List<String> quoted = new ArrayList<>();
        for (String a : command) {
            quoted.add("'" + a.replace("'", "'\\''") + "'");
        }
        return List.of("/bin/sh", "-c", String.join(" ", quoted));
    }

    private static List<String> env() {
        List<String> env = new ArrayList<>();
        Map<String, String> host = System.getenv();
        for (String k : FORWARDED_ENV) {
            if (host.containsKey(k)) {
                env.add(k + "=" + host.get(k));
            }
        }
        env.add("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        return env;
    }

    /** Polls the window size and forwards changes (Java has no SIGWINCH handler). */
    private static void watchWindowSize(RelaySession session, int[] initial) {
        Thread.ofPlatform().name("winsize").daemon().start(() -> {
            int[] last = initial;
            try {
                while (true) {
                    Thread.sleep(200);
                    int[] now = HostTerminal.windowSize();
                    if (now[0] != last[0] || now[1] != last[1]) {
                        session.resize(now[0], now[1]);
                        last = now;
                    }
                }
            } catch (InterruptedException | IOException e) {
                // session over
            }
        });
    }

    private static int fail(JwslMessage.Response r) {
        return fail(r instanceof JwslMessage.Error e ? e.message() : "unexpected reply from the service: " + r);
    }

    private static int fail(String message) {
        System.err.println("wsl: " + message);
        return EXIT_JWSL_FAILURE;
    }
}
