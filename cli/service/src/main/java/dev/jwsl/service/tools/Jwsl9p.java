package dev.jwsl.service.tools;

import dev.jwsl.hypervisor.p9.P9Error;
import dev.jwsl.hypervisor.p9.P9Server;
import dev.jwsl.service.share.P9Listener;
import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollEventLoopGroup;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code jwsl-9p}: jwsl's 9P2000.L file server on its own, like Debian's {@code diod}: a host
 * kernel ({@code mount -t 9p -o trans=unix|tcp,version=9p2000.L}) or another VMM can use it.
 * Runs until killed.
 */
@Command(name = "jwsl-9p", mixinStandardHelpOptions = true, version = "jwsl-9p 0.1.0",
        description = "Serve host directories over 9P2000.L.",
        footer = {"", "Example: jwsl-9p --listen unix:/tmp/9p.sock --root ~/src",
                "         mount -t 9p -o trans=unix,version=9p2000.L,aname=root /tmp/9p.sock /mnt"})
public final class Jwsl9p implements Callable<Integer> {
    @Option(names = "--listen", required = true, paramLabel = "unix:PATH|tcp:HOST:PORT",
            description = "where to listen (repeatable); a Unix socket is made 0600")
    List<String> listen = new ArrayList<>();

    @Option(names = "--root", paramLabel = "DIR", description = "the directory to serve (attach name 'root' or empty)")
    Path root;

    @Option(names = "--share", paramLabel = "NAME=DIR", description = "more directories, by attach name (repeatable)")
    List<String> shares = new ArrayList<>();

    @Option(names = "--allow-device-nodes", description = "let clients make block and character device nodes "
            + "(refused by default: run as root, the server would make them on the host)")
    boolean deviceNodes;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "4", description = "worker threads (default: ${DEFAULT-VALUE})")
    int threads;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        CommandLine cmd = spec.commandLine();
        Map<String, Path> dirs = new LinkedHashMap<>();
        if (root != null) {
            dirs.put("root", root);
        }
        for (String s : shares) {
            int eq = s.indexOf('=');
            if (eq <= 0) {
                throw new CommandLine.ParameterException(cmd, "--share needs NAME=DIR, got " + s);
            }
            dirs.put(s.substring(0, eq), Path.of(s.substring(eq + 1)));
        }
        if (dirs.isEmpty()) {
            throw new CommandLine.ParameterException(cmd, "nothing to serve: give --root DIR or --share NAME=DIR");
        }
        for (Path d : dirs.values()) {
            if (!Files.isDirectory(d)) {
                throw new CommandLine.ParameterException(cmd, "not a directory: " + d);
            }
        }
        if (threads < 1 || threads > 256) {
            throw new CommandLine.ParameterException(cmd, "--threads must be 1..256");
        }
        List<P9Listener.Address> addresses = new ArrayList<>();
        for (String l : listen) {
            try {
                addresses.add(P9Listener.Address.parse(l));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(cmd, e.getMessage());
            }
        }
        EventLoopGroup group = new EpollEventLoopGroup(1);
        try (P9Server server = new P9Server(dirs, threads, P9Server.Settings.DEFAULT.withDeviceNodes(deviceNodes))) {
            List<Channel> channels = new ArrayList<>();
            for (P9Listener.Address a : addresses) {
                channels.add(P9Listener.listen(group, server, a));
                System.err.println("jwsl-9p: serving " + dirs + " on " + a);
            }
            for (Channel ch : channels) {
                ch.closeFuture().sync();
            }
            return 0;
        } catch (P9Error e) {
            System.err.println("jwsl-9p: " + e.getMessage());
            return 1;
        } catch (Exception e) {
            if (e instanceof io.netty.channel.unix.Errors.NativeIoException || e instanceof java.net.BindException) {
                System.err.println("jwsl-9p: cannot listen: " + e.getMessage());
                return 1;
            }
            throw e;
        } finally {
            group.shutdownGracefully();
        }
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new Jwsl9p()).execute(args));
    }
}
