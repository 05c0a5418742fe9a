package dev.jwsl.service;

import dev.jwsl.protocol.relay.RelayConstants;
import dev.jwsl.service.distro.Distro;
import dev.jwsl.service.distro.DistroRegistry;
import dev.jwsl.service.distro.RootfsArchive;
import dev.jwsl.protocol.JwslMessage;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The service proper: distros on ext4 disks in the one utility VM. The host keeps the registry
 * and moves bytes; the guest formats, mounts and unpacks with its tools disk, and runs each distro
 * in its own namespaces ({@code jwsl-distro} in guest-init).
 *
 * <p>Locking: one lock per distro name serialises what changes that distro's disk (start, stop,
 * import, export, resize), so a long import never blocks commands in another distro; the
 * registry and the VM's slot table have their own monitors.
 */
final class DistroService implements JwslService {
    private static final System.Logger LOG = System.getLogger(DistroService.class.getName());
    static final String IMAGE_NAME = "ext4.img";
    private static final String PARTIAL_SUFFIX = ".importing";

    /** $1 name, $2 slot, then NAME HOSTPATH SOURCE OPTIONS per host share (mounted once per VM). */
    private static final String START_SCRIPT = """
            disk "$2" >/dev/null || exit 1
            n=$1 s=$2; shift 2
            while [ $# -ge 4 ]; do
              /init jwsl-share mount "$1" "$2" "$3" "$4" || die "cannot mount the host share $1 ($2)"
              shift 4
            done
            exec /init jwsl-distro start "$n" "$s"
            """;
    private static final String STOP_SCRIPT = """
            exec /init jwsl-distro stop "$1"
            """;

    /** A distro started in boot {@code generation} of the VM, its disk in slot {@code serial}. */
    private record Running(String serial, int generation, String wslConfUser) {}

    private final DistroRegistry registry;
    private final UtilityVm vm;
    private final long defaultDiskBytes;
    private final Map<String, ReentrantLock> locks = new ConcurrentHashMap<>();
    private final Map<String, Running> running = new ConcurrentHashMap<>();
    /** Running imports by {@link #key}: -l shows them as Installing, --unregister cancels them. */
    private final Map<String, ImportJob> importing = new HashMap<>();
    private final DistroDisks disks;

    DistroService(DistroRegistry registry, UtilityVm vm, long defaultDiskBytes) {
        this.registry = registry;
        this.vm = vm;
        this.defaultDiskBytes = defaultDiskBytes;
        this.disks = new DistroDisks(vm);
        vm.onIdle(this::idleStop);
    }

    private static String key(String name) {
        return name.toLowerCase(Locale.ROOT);
    }

    private ReentrantLock lockOf(String name) {
        return locks.computeIfAbsent(key(name), k -> new ReentrantLock());
    }

    private Distro find(String name) {
        return registry.get(name).orElseThrow(() -> {
            synchronized (importing) {
                if (importing.containsKey(key(name))) {
                    return new IllegalArgumentException(importing.get(key(name)).name + " is still being imported: follow it"
                            + " with wsl --import-progress " + name + ", or cancel it with wsl --unregister " + name);
                }
            }
            return new IllegalArgumentException("there is no distribution named " + Distro.shortName(name));
        });
    }


    private boolean isRunning(Running r) {
        return r != null && r.generation() == vm.generation();
    }

    // ---- sessions ----

    @Override
    public Lease ensureVm(long transactionId, String distro, boolean system) throws InterruptedException, IOException {
        Optional<Distro> target = system ? Optional.empty()
                : distro.isEmpty() ? registry.defaultDistro() : Optional.of(find(distro));
        UtilityVm.Hold hold = vm.hold();
        try {
            String name = "", user = "";
            if (target.isPresent()) {
                Distro d = target.get();
                Running r = start(d, hold);
                name = d.name();
                user = !r.wslConfUser().isEmpty() ? r.wslConfUser() : d.defaultUser();
            }
            JwslMessage.VmReady ready = new JwslMessage.VmReady(transactionId, vm.vsockSocket().toString(),
                    RelayConstants.PORT, name, user);
            return new Lease() {
                @Override
                public JwslMessage.VmReady ready() {
                    return ready;
                }

                @Override
                public void close() {
                    hold.close();
                }
            };
        } catch (IOException | RuntimeException e) {
            hold.close();
            throw e;
        }
    }

    /** Starts {@code d} in the VM {@code hold} holds, unless it runs already. */
    private Running start(Distro d, UtilityVm.Hold hold) throws IOException {
        ReentrantLock lock = lockOf(d.name());
        lock.lock();
        try {
            Running r = running.get(key(d.name()));
            if (r != null && r.generation() == hold.generation()) {
                return r;
            }
            if (!Files.isRegularFile(d.image())) {
                throw new IllegalStateException("the disk of " + d.name() + " is missing: " + d.image());
            }
            String serial = vm.attach(d.image(), false, hold.generation(), "distro " + d.name());
            GuestShell.Result res;
            try {
                List<String> args = new ArrayList<>(List.of(d.name(), serial));
                args.addAll(vm.shareMountArgs());
                res = hold.shell().run(START_SCRIPT, args.toArray(String[]::new));
            } catch (IOException | RuntimeException e) {
                vm.detach(serial, hold.generation());
                throw e;
            }
            if (!res.ok()) {
                vm.detach(serial, hold.generation());
                throw new IllegalStateException("cannot start " + d.name() + ": " + res.error());
            }
            Map<String, String> out = keyValues(res.stdout());
            r = new Running(serial, hold.generation(), out.getOrDefault("default_user", ""));
            running.put(key(d.name()), r);
            LOG.log(System.Logger.Level.INFO, "started {0} in {1} ({2})", d.name(), serial, out);
            return r;
        } finally {
            lock.unlock();
        }
    }

    private static Map<String, String> keyValues(String text) {
        Map<String, String> m = new HashMap<>();
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                m.put(line.substring(0, eq).strip(), line.substring(eq + 1).strip());
            }
        }
        return m;
    }

    /** Stops {@code name} if it runs: its namespace is killed, its disk unmounted and ejected. */
    private void stop(String name) throws IOException, InterruptedException {
        ReentrantLock lock = lockOf(name);
        lock.lock();
        try {
            Running r = running.remove(key(name));
            if (!isRunning(r)) {
                return;
            }
            try (UtilityVm.Hold hold = vm.hold()) {
                if (hold.generation() != r.generation()) {
                    return; // the VM restarted in between: nothing of the distro is left
                }
                GuestShell.Result res = hold.shell().run(STOP_SCRIPT, name);
                if (!res.ok() && res.exit() != 3) { // 3: it had stopped on its own
                    throw new IllegalStateException("cannot stop " + name + ": " + res.error());
                }
                vm.detach(r.serial(), r.generation());
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public JwslMessage.StatusReply status(long transactionId) {
        return new JwslMessage.StatusReply(transactionId, vm.state(), vm.holds(), vm.uptimeMs(), vm.idleTimeoutMs(),
                vm.kernel().toString());
    }

    @Override
    public void shutdown(boolean force) {
        if (!force) {
            stopAll();
        }
        running.clear();
        vm.shutdown();
    }

    private void idleStop() {
        if (vm.idle()) {
            shutdown(false);
        }
    }

    /** Unmounts every distro so its ext4 is clean before the VM goes away. */
    private void stopAll() {
        for (String name : List.copyOf(running.keySet())) {
            try {
                stop(name);
            } catch (IOException | RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "stopping {0} failed: {1}", name, e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    // ---- registry commands ----

    @Override
    public List<JwslMessage.DistroInfo> list() {
        String def = registry.defaultDistro().map(Distro::name).orElse("");
        List<JwslMessage.DistroInfo> out = new ArrayList<>();
        for (Distro d : registry.list()) {
            String state = isRunning(running.get(key(d.name()))) ? "Running" : "Stopped";
            out.add(new JwslMessage.DistroInfo(d.name(), state, d.version(), d.name().equals(def)));
        }
        synchronized (importing) {
            for (ImportJob job : importing.values()) {
                out.add(new JwslMessage.DistroInfo(job.name, "Installing", 2, false));
            }
        }
        return out;
    }

    @Override
    public void setDefault(String name) throws IOException {
        registry.setDefault(find(name).name());
    }

    @Override
    public void terminate(String name) throws IOException, InterruptedException {
        stop(find(name).name());
    }

    /** How long --unregister of a distro being imported waits for the import to stop. */
    private static final long CANCEL_WAIT_MS = GuestShell.STOP_GRACE_MS + 30_000;

    @Override
    public void unregister(String name) throws IOException, InterruptedException {
        ImportJob job;
        synchronized (importing) {
            job = importing.get(key(name));
        }
        if (job != null) {
            job.cancel.cancel("the import of " + job.name + " was cancelled by wsl --unregister");
            if (!job.awaitEnd(CANCEL_WAIT_MS)) {
                throw new IllegalStateException("the import of " + job.name + " is still stopping: try again");
            }
            if (registry.get(name).isEmpty()) {
                return;
            } // else it had just completed: unregister what it registered
        }
        Distro d = find(name);
        ReentrantLock lock = lockOf(d.name());
        lock.lock();
        try {
            stop(d.name());
            // Forget it first: a crash between the two steps leaves an orphaned file, never a
            // registered distro without a disk.
            registry.remove(d.name());
            Files.deleteIfExists(d.image());
            try {
                Files.deleteIfExists(d.installDir()); // only if empty: other files are the user's
            } catch (java.nio.file.DirectoryNotEmptyException keep) {
                // left in place
            }
        } finally {
            lock.unlock();
        }
    }

    // ---- import ----

    /**
     * A running import: its name as given, how far it got (for clients that follow it), and its
     * cancellation, which its own client going away or --unregister triggers.
     */
    private static final class ImportJob {
        final String name;
        final Cancellation cancel = new Cancellation();
        final List<Progress> followers = new java.util.concurrent.CopyOnWriteArrayList<>();
        /** Completes when the import ends: normally if it registered the distro, else with the error. */
        final java.util.concurrent.CompletableFuture<Void> end = new java.util.concurrent.CompletableFuture<>();

        ImportJob(String name) {
            this.name = name;
        }

        void report(String phase, long done, long total) {
            for (Progress f : followers) {
                f.report(phase, done, total);
            }
        }

        boolean awaitEnd(long millis) throws InterruptedException {
            try {
                end.get(millis, java.util.concurrent.TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                // it failed or was cancelled: it ended all the same
            } catch (java.util.concurrent.TimeoutException e) {
                return false;
            }
            return true;
        }
    }

    private ImportJob reserve(String name) {
        Distro.checkName(name);
        synchronized (importing) {
            if (importing.containsKey(key(name)) || registry.get(name).isPresent()) {
                throw new IllegalArgumentException("a distribution named " + name + " already exists"
                        + " (names are compared ignoring case)");
            }
            ImportJob job = new ImportJob(name);
            importing.put(key(name), job);
            return job;
        }
    }

    private void unreserve(ImportJob job, Throwable failure) {
        synchronized (importing) {
            importing.remove(key(job.name), job);
        }
        if (failure == null) {
            job.end.complete(null);
        } else {
            job.end.completeExceptionally(failure);
        }
    }

    @Override
    public void importDistro(String name, Path installDir, Path archive, long diskBytes, Progress progress,
                             Cancellation client) throws IOException, InterruptedException {
        ImportJob job = reserve(name);
        Path partial = null;
        List<Path> madeDirs = List.of();
        Throwable failure = new IllegalStateException("the import of " + name + " failed");
        try (Cancellation.Registration link = client.onCancel(
                () -> job.cancel.cancel("the import of " + name + " was cancelled: " + client.reason()))) {
            Progress report = (phase, done, total) -> {
                progress.report(phase, done, total);
                job.report(phase, done, total);
            };
            if (!Files.isRegularFile(archive) || !Files.isReadable(archive)) {
                throw new IllegalArgumentException("cannot read " + archive);
            }
            long disk = diskBytes > 0 ? diskBytes : defaultDiskBytes;
            if (disk < (64L << 20) || disk % 4096 != 0) {
                throw new IllegalArgumentException("the disk size must be a multiple of 4 KiB and at least 64 MiB");
            }
            Path dir = installDir.toAbsolutePath().normalize();
            if (Files.exists(dir) && !Files.isDirectory(dir)) {
                throw new IllegalArgumentException(dir + " is not a directory: give a directory for the disk");
            }
            Path image = dir.resolve(IMAGE_NAME);
            if (Files.exists(image) || registry.imageInUse(image)) {
                throw new IllegalArgumentException(dir + " already holds a distribution disk (" + IMAGE_NAME + ")");
            }
            long size = Files.size(archive);
            RootfsArchive.Scan scan = RootfsArchive.scan(archive, done -> {
                job.cancel.check(); // a large archive takes a while to read: stop there too
                report.report("checking", done, size);
            });
            job.cancel.check();
            madeDirs = createDirectories(dir);
            partial = dir.resolve(IMAGE_NAME + PARTIAL_SUFFIX);
            Files.deleteIfExists(partial); // a crashed import's leftover: never registered
            try (RandomAccessFile f = new RandomAccessFile(partial.toFile(), "rw")) {
                f.setLength(disk); // sparse: the host pays for what the guest writes
            }
            disks.unpack(name, partial, archive, size, scan, disk, report, job.cancel);
            try (FileChannel ch = FileChannel.open(partial, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            synchronized (importing) {
                // N.B. the last moment to cancel: from here on the import completes
                job.cancel.check();
                Files.move(partial, image, StandardCopyOption.ATOMIC_MOVE);
                DistroRegistry.fsyncDirectory(dir);
                registry.add(new Distro(name, UUID.randomUUID().toString(), dir, image, "", 2));
                partial = null;
                madeDirs = List.of();
            }
            failure = null;
            LOG.log(System.Logger.Level.INFO, "imported {0}: {1} entries, {2} bytes of tar", name, scan.entries(),
                    scan.tarBytes());
        } catch (IOException | RuntimeException e) {
            failure = job.cancel.cancelled() ? new Cancellation.CancelledException(job.cancel.reason()) : e;
            if (job.cancel.cancelled()) {
                LOG.log(System.Logger.Level.INFO, "{0}", job.cancel.reason());
                throw (Cancellation.CancelledException) failure;
            }
            throw e;
        } finally {
            if (partial != null) {
                Files.deleteIfExists(partial);
            }
            removeEmpty(madeDirs);
            unreserve(job, failure);
        }
    }

    /** Follows the running import of {@code name}: its progress until it ends, as its own client sees it. */
    @Override
    public void followImport(String name, Progress progress, Cancellation client) throws InterruptedException {
        ImportJob job;
        synchronized (importing) {
            job = importing.get(key(name));
        }
        if (job == null) {
            throw new IllegalArgumentException("no import of " + Distro.shortName(name) + " is running");
        }
        job.followers.add(progress);
        LOG.log(System.Logger.Level.INFO, "a client follows the import of {0}", job.name);
        try (Cancellation.Registration gone = client.onCancel(() -> job.followers.remove(progress))) {
            try {
                while (!job.awaitEnd(1000)) {
                    if (client.cancelled()) {
                        return; // the follower went away; the import goes on
                    }
                }
                job.end.join();
            } catch (java.util.concurrent.CompletionException e) {
                throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause().getMessage());
            }
        } finally {
            job.followers.remove(progress);
        }
    }

    /** Creates {@code dir} and its missing parents; returns those it created, deepest first. */
    private static List<Path> createDirectories(Path dir) throws IOException {
        List<Path> made = new ArrayList<>();
        for (Path p = dir; p != null && !Files.exists(p); p = p.getParent()) {
            made.add(p);
        }
        Files.createDirectories(dir);
        return made;
    }

    /** Removes those of {@code dirs} (deepest first) that are empty: an import leaves DIR as it found it. */
    private static void removeEmpty(List<Path> dirs) {
        for (Path p : dirs) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException e) {
                return; // not empty, or not ours to remove: the rest are its parents
            }
        }
    }

    @Override
    public void importInPlace(String name, Path image) throws IOException {
        ImportJob job = reserve(name);
        Throwable failure = new IllegalStateException("the import of " + name + " failed");
        try {
            Path abs = image.toAbsolutePath().normalize();
            if (!Files.isRegularFile(abs)) {
                throw new IllegalArgumentException(abs + " is not a file");
            }
            if (registry.imageInUse(abs)) {
                throw new IllegalArgumentException(abs + " is already the disk of a registered distribution");
            }
            DistroDisks.checkExt4(abs);
            registry.add(new Distro(name, UUID.randomUUID().toString(), abs.getParent(), abs, "", 2));
            failure = null;
        } finally {
            unreserve(job, failure);
        }
    }

    // ---- export ----

    @Override
    public void export(String name, Path output, String format, Progress progress)
            throws IOException, InterruptedException {
        Distro d = find(name);
        if (!List.of("tar", "tar.gz", "tar.xz").contains(format)) {
            throw new IllegalArgumentException("unknown export format " + format + ": use tar, tar.gz or tar.xz");
        }
        Path out = output.toAbsolutePath().normalize();
        if (out.getParent() == null || !Files.isDirectory(out.getParent())) {
            throw new IllegalArgumentException("no such directory: " + out.getParent());
        }
        ReentrantLock lock = lockOf(d.name());
        lock.lock();
        Path scratch = d.installDir().resolve(".export." + UUID.randomUUID() + ".tar");
        try {
            stop(d.name()); // a consistent file system: nothing writes while it is read
            long allocated = DistroDisks.allocatedBytes(d.image());
            try (RandomAccessFile f = new RandomAccessFile(scratch.toFile(), "rw")) {
                // Sparse and generous: tar adds headers and padding to what the disk holds.
                f.setLength(((allocated * 2 + (256L << 20)) + 511) / 512 * 512);
            }
            progress.report("packing", 0, allocated);
            long tarBytes = disks.pack(d, scratch);
            DistroDisks.writeExport(scratch, tarBytes, out, format, progress);
        } finally {
            Files.deleteIfExists(scratch);
            lock.unlock();
        }
    }

    // ---- manage ----

    @Override
    public void manage(String name, long resizeBytes, String defaultUser) throws IOException, InterruptedException {
        Distro d = find(name);
        if (resizeBytes > 0) {
            resize(d, resizeBytes);
        }
        if (!defaultUser.isEmpty()) {
            if (!Distro.USER.matcher(defaultUser).matches()) {
                throw new IllegalArgumentException("invalid user name: " + defaultUser);
            }
            try (UtilityVm.Hold hold = vm.hold()) {
                start(d, hold);
                GuestShell.Result res = hold.shell().runIn(d.name(), "", List.of("id", "-u", defaultUser));
                if (!res.ok()) {
                    throw new IllegalArgumentException("user " + defaultUser + " does not exist in " + d.name());
                }
            }
            registry.update(find(name).withDefaultUser(defaultUser));
        }
    }

    private void resize(Distro d, long bytes) throws IOException, InterruptedException {
        if (bytes < (64L << 20) || bytes % 4096 != 0) {
            throw new IllegalArgumentException("the disk size must be a multiple of 4 KiB and at least 64 MiB");
        }
        ReentrantLock lock = lockOf(d.name());
        lock.lock();
        try {
            stop(d.name());
            long old = Files.size(d.image());
            if (bytes > old) {
                try (RandomAccessFile f = new RandomAccessFile(d.image().toFile(), "rw")) {
                    f.setLength(bytes);
                }
            }
            disks.resizeFileSystem(d, bytes);
            if (bytes < old) {
                try (RandomAccessFile f = new RandomAccessFile(d.image().toFile(), "rw")) {
                    f.setLength(bytes); // the file system now ends before the cut
                    f.getFD().sync();
                }
            }
        } finally {
            lock.unlock();
        }
    }
}
