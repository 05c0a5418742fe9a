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
        return run(script, new Cancellation(), args);
    }

    /**
     * Runs {@code script} until it exits or is cancelled. Cancelling sends the script's process
     * group SIGHUP through the session and waits for its exit as usual, so the caller detaches
     * what the script used only once the guest let go of it (scripts that must clean up trap
     * SIGHUP; the import's tar dies of it). A script still running {@link #STOP_GRACE_MS} later
     * loses its session: the relay then sends its group SIGHUP again and SIGKILL 5 s later, and
     * the run ends at once. A cancel does not depend on the guest's cooperation.
     */
    Result run(String script, Cancellation cancel, String... args) throws IOException {
        List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", PRELUDE + script, "jwsl"));
        argv.addAll(List.of(args));
        return collect(new CreateRequest(false, 0, 0, "", "/", "", argv, List.of("PATH=/bin:/sbin:/usr/bin:/usr/sbin")),
                cancel);
    }

    /** Runs a command inside a running distro as {@code user}. */
    Result runIn(String distro, String user, List<String> argv) throws IOException {
        return collect(new CreateRequest(false, 0, 0, user, "/", distro, argv, List.of()), new Cancellation());
    }

    /** How long a cancelled script may take to end before its session is dropped. */
    static final long STOP_GRACE_MS = 10_000;

    /** One relay session, its output collected. */
    private Result collect(CreateRequest req, Cancellation cancel) throws IOException {
        CappedOutput out = new CappedOutput();
        CappedOutput err = new CappedOutput();
        try (RelaySession s = RelaySession.connect(vsockSocket, relayPort);
             Cancellation.Registration stop = cancel.onCancel(() -> stop(s))) {
            int exit = s.run(req, InputStream.nullInputStream(), out, err);
            return new Result(exit, out.toString(), err.toString());
        }
    }

    /** What a script may print that is kept (the rest is counted): the guest decides how much it prints. */
    static final int OUTPUT_LIMIT = 1 << 20;

    /** The first {@link #OUTPUT_LIMIT} bytes of a stream. */
    private static final class CappedOutput extends java.io.OutputStream {
        private final ByteArrayOutputStream kept = new ByteArrayOutputStream();
        private long dropped;

        @Override
        public void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) {
            int keep = Math.max(0, Math.min(len, OUTPUT_LIMIT - kept.size()));
            kept.write(b, off, keep);
            dropped += len - keep;
        }

        @Override
        public String toString() {
            String s = kept.toString(StandardCharsets.UTF_8);
            return dropped == 0 ? s : s + "\n(" + dropped + " more bytes of output dropped)\n";
        }
    }

    private static final int SIGHUP = 1;

    private static void stop(RelaySession s) {
        try {
            s.signal(SIGHUP);
        } catch (IOException e) {
            s.close();
            return;
        }
        Thread.ofVirtual().name("guest-shell-stop").start(() -> {
            try {
                Thread.sleep(STOP_GRACE_MS);
            } catch (InterruptedException ignored) {
                // close now
            }
            s.close();
        });
    }
}
