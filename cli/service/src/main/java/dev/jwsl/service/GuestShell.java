package dev.jwsl.service;

import dev.jwsl.protocol.relay.CreateRequest;
import dev.jwsl.protocol.relay.RelaySession;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs busybox shell scripts in the utility VM itself (not in a distro) through the command
 * relay, as root, and collects their output: how the service formats, mounts and unpacks disks.
 * Scripts get {@link #PRELUDE}'s helpers; arguments arrive as {@code $1...}, never spliced into
 * the script text.
 */
final class GuestShell {
    /**
     * Shell helpers for disk scripts. {@code disk SERIAL} waits until the slot with that virtio
     * serial has a medium (the size arrives by a configuration-change interrupt, asynchronously)
     * and prints its device node; {@code tools} mounts the tools disk and puts its programs
     * under $T (called by absolute path: busybox's shell prefers its own applets to PATH).
     */
    static final String PRELUDE = """
            set -o pipefail
            die() { echo "$*" >&2; exit 1; }
            disk() {
              i=0
              while :; do
                for d in /sys/block/vd*; do
                  [ "$(cat "$d/serial" 2>/dev/null)" = "$1" ] || continue
                  [ "$(cat "$d/size")" != 0 ] || continue
                  n=${d##*/}
                  [ -b "/dev/$n" ] || mknod "/dev/$n" b $(sed 's/:/ /' "$d/dev") || die "cannot create /dev/$n"
                  echo "/dev/$n"; return 0
                done
                i=$((i+1)); [ $i -le 300 ] || die "disk $1 did not appear in the utility VM"
                sleep 0.1
              done
            }
            tools() {
              T=/run/jwsl/tools
              if ! grep -q " $T " /proc/mounts; then
                td=$(disk jwsl-tools) || exit 1
                mkdir -p $T && mount -t ext4 -o ro,noload "$td" $T || die "cannot mount the tools disk"
              fi
              . $T/env
            }
            """;

    /** A finished script: exit status and its output. */
    record Result(int exit, String stdout, String stderr) {
        boolean ok() {
            return exit == 0;
        }

        /** The last non-empty stderr line: the error to show the user. */
        String error() {
            String[] lines = stderr.strip().split("\n");
            String last = lines[lines.length - 1].strip();
            return last.isEmpty() ? "exit status " + exit : last;
        }
    }

    private final Path vsockSocket;
    private final int relayPort;

    GuestShell(Path vsockSocket, int relayPort) {
        this.vsockSocket = vsockSocket;
        this.relayPort = relayPort;
    }

    /** Runs {@code script} with {@code args} as $1.. and no input. */
    Result run(String script, String... args) throws IOException {
        return run(script, InputStream.nullInputStream(), args);
    }

    Result run(String script, InputStream stdin, String... args) throws IOException {
        List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", PRELUDE + script, "jwsl"));
        argv.addAll(List.of(args));
        return collect(new CreateRequest(false, 0, 0, "", "/", "", argv, List.of("PATH=/bin:/sbin:/usr/bin:/usr/sbin")),
                stdin);
    }

    /** Runs a command inside a running distro as {@code user}. */
    Result runIn(String distro, String user, List<String> argv) throws IOException {
        return collect(new CreateRequest(false, 0, 0, user, "/", distro, argv, List.of()), InputStream.nullInputStream());
    }

    /** One relay session, its output collected. */
    private Result collect(CreateRequest req, InputStream stdin) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (RelaySession s = RelaySession.connect(vsockSocket, relayPort)) {
            int exit = s.run(req, stdin, out, err);
            return new Result(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        }
    }
}
