package dev.jwsl.cli;

import dev.jwsl.cli.relay.CreateRequest;
import dev.jwsl.cli.relay.RelaySession;
import dev.jwsl.service.ServicePaths;
import dev.jwsl.service.protocol.JwslMessage;

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
    /** Environment passed into the guest: terminal and locale, not host paths. */
    private static final List<String> FORWARDED_ENV = List.of("TERM", "LANG", "LC_ALL", "COLORTERM");

    private final ServicePaths paths = ServicePaths.forCurrentUser();

    private ServiceClient service() throws IOException {
        String launcher = System.getenv("JWSL_SERVICE_CMD");
        if (launcher == null || launcher.isBlank()) {
            throw new IOException("JWSL_SERVICE_CMD is not set: start wsl through bin/wsl");
        }
        return ServiceClient.connect(paths, List.of("/bin/sh", "-c", launcher));
    }

    int status() {
        try (ServiceClient s = service()) {
            JwslMessage.Response r = s.call(JwslMessage.Status::new);
            if (r instanceof JwslMessage.StatusReply st) {
                System.out.printf("VM: %s%nSessions: %d%nUptime: %d s%nIdle timeout: %d s%nKernel: %s%n",
                        st.vmState(), st.sessions(), st.uptimeMs() / 1000, st.idleTimeoutMs() / 1000, st.kernel());
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

    int run(List<String> command, boolean exec, String cwd, String user) {
        boolean tty = HostTerminal.isInteractive();
        try (ServiceClient s = service()) {
            JwslMessage.Response r = s.call(JwslMessage.EnsureVm::new);
            if (!(r instanceof JwslMessage.VmReady ready)) {
                return fail(r);
            }
            int[] size = tty ? HostTerminal.windowSize() : new int[] {0, 0};
            CreateRequest req = new CreateRequest(tty, size[0], size[1], user, cwd, argv(command, exec), env());
            try (RelaySession session = RelaySession.connect(Path.of(ready.vsockSocket()), ready.relayPort());
                 HostTerminal terminal = tty ? HostTerminal.raw() : HostTerminal.none()) {
                if (tty) {
                    watchWindowSize(session, size);
                }
                return session.run(req, new FileInputStream(FileDescriptor.in), new FileOutputStream(FileDescriptor.out),
                        new FileOutputStream(FileDescriptor.err));
            }
        } catch (IllegalArgumentException | IOException e) {
            return fail(e.getMessage());
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
