package dev.jwsl.hypervisor.p9;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.Executors;
import java.util.function.Function;
import java.util.stream.Stream;

import static dev.jwsl.hypervisor.p9.P9SessionTest.O_CREAT;
import static dev.jwsl.hypervisor.p9.P9SessionTest.O_DIRECTORY;
import static dev.jwsl.hypervisor.p9.P9SessionTest.O_EXCL;
import static dev.jwsl.hypervisor.p9.P9SessionTest.O_TRUNC;
import static dev.jwsl.hypervisor.p9.P9SessionTest.RDONLY;
import static dev.jwsl.hypervisor.p9.P9SessionTest.RDWR;
import static dev.jwsl.hypervisor.p9.P9SessionTest.WRONLY;

/**
 * The same random, well-formed 9P2000.L sequences against jwsl's server and Debian's diod, each
 * from the same fresh tree, printing where the answers differ (an errno, a size, a mode, a
 * listing). A tool for finding bugs, not a pass/fail test: it runs only where diod is serving
 * JWSL_P9_DIOD (host:port) from the directory JWSL_P9_DIOD_ROOT, for example, as root:
 * <pre>
 *   mkdir -p /tmp/p9diff/diod
 *   unshare -m --propagation private sh -c 'mount --bind /tmp/p9diff/diod /tmp/p9diff/diod &&
 *     mount -o remount,bind,ro / && exec diod -f -n -l 127.0.0.1:5640 -e /tmp/p9diff/diod -L stderr'
 *   JWSL_P9_DIOD=127.0.0.1:5640 JWSL_P9_DIOD_ROOT=/tmp/p9diff/diod mvn ... -Dtest=P9DiodDiffTest
 * </pre>
 * diod runs with a read-only root because it follows symlinks out of its export.
 */
@EnabledIfEnvironmentVariable(named = "JWSL_P9_DIOD", matches = ".+")
class P9DiodDiffTest {
    static final String[] NAMES = {"a", "b", "d", "f", "l", "..", ".", "new"};
    static final int[] MODES = {0644, 0620, 0755, 04755, 02775, 0777, 01777, 0};
    static final int SEQUENCES = 400, STEPS = 60;

    @Test
    void sameSequencesSameAnswers() throws Exception {
        String[] hostPort = System.getenv("JWSL_P9_DIOD").split(":");
        Path diodRoot = Path.of(System.getenv("JWSL_P9_DIOD_ROOT"));
        Path jwslRoot = Files.createTempDirectory("p9diff-jwsl");
        Differences found = new Differences(new TreeMap<>(), new LinkedHashMap<>());
        try (P9Server server = new P9Server(Map.of("root", jwslRoot), Executors.newSingleThreadExecutor(), 64, 1)) {
            Random rnd = new Random(0xD10D);
            for (int seq = 0; seq < SEQUENCES; seq++) {
                fresh(jwslRoot);
                fresh(diodRoot);
                // a connection per sequence: diod keeps fids across Tversion
                try (Socket socket = new Socket(hostPort[0], Integer.parseInt(hostPort[1]));
                     P9Session session = server.open();
                     P9Client jwsl = new P9Client(P9Client.direct(session, 1 << 16));
                     P9Client diod = new P9Client(P9Client.stream(socket.getInputStream(), socket.getOutputStream(), socket))) {
                    if (!sequence(jwsl, diod, diodRoot, rnd, found)) {
                        break;
                    }
                } catch (ConnectException e) {
                    found.kinds().merge("diod gone before sequence " + seq, 1, Integer::sum);
                    break;
                }
            }
        } finally {
            clear(jwslRoot);
            Files.delete(jwslRoot);
        }
        System.out.println("P9DiodDiffTest: " + SEQUENCES + " sequences of up to " + STEPS + " steps; differences:");
        found.kinds().entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed())
                .forEach(e -> System.out.println(e.getValue() + " x " + e.getKey() + "\n    " + found.example().get(e.getKey())));
    }

    /** How often each first difference came, and the steps that led to its first instance. */
    record Differences(Map<String, Integer> kinds, Map<String, String> example) {}

    /** One sequence from a fresh tree, up to its first difference; false if diod went away. */
    static boolean sequence(P9Client jwsl, P9Client diod, Path diodRoot, Random rnd, Differences found) {
        String j0 = outcome(k -> attach(k, ""), jwsl), d0 = outcome(k -> attach(k, diodRoot.toString()), diod);
        if (!j0.equals(d0)) {
            found.kinds().merge("attach: jwsl " + j0 + " / diod " + d0, 1, Integer::sum);
            return !d0.equals("crashed");
        }
        List<String> trace = new ArrayList<>();
        for (int step = 0; step < STEPS; step++) {
            Op op = op(new Random(rnd.nextLong()));
            String j = outcome(op.run(), jwsl), d = outcome(op.run(), diod);
            trace.add(op.what() + " -> " + j + (j.equals(d) ? "" : " / diod " + d));
            if (d.equals("crashed")) {
                found.kinds().merge("diod crashed", 1, Integer::sum);
                found.example().putIfAbsent("diod crashed", String.join("\n    ", trace));
                return false;
            }
            if (!j.equals(d) && !(j.equals("err 9") && d.equals("err 5"))) { // diod: EIO for an unknown fid
                String kind = (op.what().split(" ")[0] + ": jwsl " + j + " / diod " + d).replaceAll("\\[[^]]*]", "[..]");
                found.kinds().merge(kind, 1, Integer::sum);
                found.example().putIfAbsent(kind, String.join("\n    ", trace.subList(Math.max(0, trace.size() - 12), trace.size())));
                return true; // the trees may differ from here on
            }
        }
        return true;
    }

    record Op(String what, Function<P9Client, String> run) {}

    static String attach(P9Client c, String aname) {
        c.version(1 << 16);
        c.attach(1, aname, 0);
        return "";
    }

    static String outcome(Function<P9Client, String> f, P9Client c) {
        try {
            return "ok " + f.apply(c);
        } catch (P9Error e) {
            return "err " + e.errno();
        } catch (UncheckedIOException e) {
            return "crashed";
        }
    }

    static Op op(Random r) {
        int fid = 1 + r.nextInt(5), other = 1 + r.nextInt(5), newfid = 2 + r.nextInt(4);
        String n = NAMES[r.nextInt(NAMES.length)], n2 = NAMES[r.nextInt(NAMES.length)];
        int mode = MODES[r.nextInt(MODES.length)];
        return switch (r.nextInt(17)) {
            case 0, 1 -> {
                int k = r.nextInt(3);
                String[] names = new String[k];
                for (int i = 0; i < k; i++) {
                    names[i] = NAMES[r.nextInt(NAMES.length)];
                }
                // diod lets a walk take a newfid in use: free it first on both
                yield new Op("walk " + fid + "->" + newfid + " " + String.join("/", names), c -> {
                    if (newfid != fid) {
                        outcome(x -> { x.clunk(newfid); return ""; }, c);
                    }
                    return "" + c.walk(fid, newfid, names).size();
                });
            }
            case 2 -> new Op("clunk " + newfid, c -> { c.clunk(newfid); return ""; });
            case 3 -> {
                int[] flags = {RDONLY, WRONLY, RDWR, RDONLY | O_DIRECTORY, RDWR | O_TRUNC};
                int fl = flags[r.nextInt(flags.length)];
                yield new Op("lopen " + fid + " " + Integer.toOctalString(fl), c -> { c.lopen(fid, fl); return ""; });
            }
            case 4 -> {
                int[] flags = {RDWR | O_CREAT, RDWR | O_CREAT | O_EXCL, WRONLY | O_CREAT | O_TRUNC, RDONLY | O_CREAT};
                int fl = flags[r.nextInt(flags.length)];
                yield new Op("lcreate " + fid + " " + n + " " + Integer.toOctalString(fl) + " " + Integer.toOctalString(mode),
                        c -> { c.lcreate(fid, n, fl, mode, 0); return ""; });
            }
            case 5 -> new Op("mkdir " + fid + " " + n + " " + Integer.toOctalString(mode), c -> { c.mkdir(fid, n, mode, 0); return ""; });
            case 6 -> new Op("symlink " + fid + " " + n + " -> " + n2, c -> { c.symlink(fid, n, n2); return ""; });
            case 7 -> new Op("link " + fid + " " + other + " " + n, c -> { c.link(fid, other, n); return ""; });
            case 8 -> new Op("renameat " + fid + " " + n + " " + other + " " + n2, c -> { c.renameat(fid, n, other, n2); return ""; });
            case 9 -> new Op("mknod " + fid + " " + n + " fifo " + Integer.toOctalString(mode),
                    c -> { c.mknod(fid, n, 0010000 | mode, 0, 0, 0); return ""; }); // diod has no Tunlinkat
            case 10 -> {
                long off = r.nextInt(3) * 5L;
                yield new Op("read " + fid + " @" + off, c -> new String(c.read(fid, off, 100)));
            }
            case 11 -> {
                long off = r.nextInt(3) * 5L;
                yield new Op("write " + fid + " @" + off, c -> "" + c.write(fid, off, "hello".getBytes()));
            }
            case 12 -> new Op("readdir " + fid, c -> "[" + c.readdirAll(fid, 8192).stream().map(P9Client.Entry::name)
                    .sorted().toList() + "]");
            case 13 -> new Op("readlink " + fid, c -> c.readlink(fid));
            case 14 -> new Op("getattr " + fid, c -> {
                P9Client.Attr a = c.getattr(fid);
                return Integer.toOctalString(a.mode()) + " size " + (a.mode() >> 12 == 4 ? "-" : a.size()) + " nlink " + a.nlink()
                        + " uid " + a.uid() + " gid " + a.gid();
            });
            case 15 -> new Op("chmod " + fid + " " + Integer.toOctalString(mode),
                    c -> { c.setattr(fid, P9ConstantsView.ATTR_MODE, mode, 0, 0, 0, 0); return ""; });
            default -> new Op("remove " + newfid, c -> { c.remove(newfid); return ""; });
        };
    }

    /** The starting tree: d/, d/f, f ("data"), l -> f. */
    static void fresh(Path root) throws IOException {
        clear(root);
        HostFs.chmod(root.toString(), 0755);
        Files.createDirectory(root.resolve("d"));
        Files.writeString(root.resolve("d/f"), "in d");
        Files.writeString(root.resolve("f"), "data");
        Files.createSymbolicLink(root.resolve("l"), Path.of("f"));
    }

    static void clear(Path root) throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                if (!p.equals(root)) {
                    Files.delete(p);
                }
            }
        }
    }
}
