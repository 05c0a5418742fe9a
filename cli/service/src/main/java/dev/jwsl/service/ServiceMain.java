package dev.jwsl.service;

import dev.jwsl.protocol.ServicePaths;

import dev.jwsl.service.distro.DistroRegistry;
import dev.jwsl.service.wire.JwslMessageDecoder;
import dev.jwsl.service.wire.JwslMessageEncoder;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.channel.unix.DomainSocketChannel;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.FileHandler;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;

/**
 * Start-up of the per-user jwsl service (the wslservice analogue): one instance per user (a lock
 * file), a Netty epoll server on a mode-0600 Unix socket in the user's private runtime
 * directory, the log in the state directory. Exits when its socket cannot be served.
 *
 * <p>Arguments: {@code KERNEL INITRD TOOLS_IMAGE}, the images of the utility VM.
 */
public final class ServiceMain {
    private ServiceMain() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: ServiceMain KERNEL INITRD TOOLS_IMAGE");
            System.exit(2);
        }
        ServicePaths paths = ServicePaths.forCurrentUser();
        try {
            paths.create();
        } catch (IOException e) {
            System.err.println("jwsl service: " + e.getMessage());
            System.exit(1);
        }
        try (FileChannel lockChannel = FileChannel.open(paths.lockFile(), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE);
             FileLock lock = lockChannel.tryLock()) {
            if (lock == null) {
                System.err.println("jwsl service: already running for this user");
                System.exit(3);
            }
            setUpLog(paths.logFile());
            serve(paths, Path.of(args[0]), Path.of(args[1]), Path.of(args[2]));
        }
    }

    private static void setUpLog(Path log) throws IOException {
        System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tF %1$tT %4$s %3$s: %5$s%6$s%n");
        Logger root = Logger.getLogger("");
        for (var h : root.getHandlers()) {
            root.removeHandler(h);
        }
        FileHandler file = new FileHandler(log.toString(), true);
        file.setFormatter(new SimpleFormatter());
        root.addHandler(file);
    }

    private static void serve(ServicePaths paths, Path kernel, Path initrd, Path tools) throws Exception {
        Logger log = Logger.getLogger(ServiceMain.class.getName());
        Path configFile = Path.of(System.getenv().getOrDefault("JWSL_WSLCONFIG",
                Path.of(System.getProperty("user.home"), ".wslconfig").toString()));
        WslConfig config = WslConfig.load(configFile);
        OutputStream console = new FileOutputStream(paths.stateDir().resolve("console.log").toFile(), true);
        UtilityVm utilityVm = new UtilityVm(config, kernel, initrd, tools, paths, console);
        String sleepFile = System.getenv("JWSL_TEST_HOST_SLEEP");
        utilityVm.watchHostSleep(new HostSleepWatch(HostSleepWatch.hostSleptNanos(sleepFile == null ? null : Path.of(sleepFile))),
                Duration.ofSeconds(2));
        DistroService vm = new DistroService(DistroRegistry.forCurrentUser(), utilityVm, config.defaultVhdBytes());
        Runtime.getRuntime().addShutdownHook(new Thread(() -> vm.shutdown(false)));

        Path socket = paths.serviceSocket();
        Files.deleteIfExists(socket); // stale: the lock proves no other service owns it
        ExecutorService blocking = Executors.newCachedThreadPool(Thread.ofPlatform().name("service-", 0).daemon().factory());
        EventLoopGroup group = new EpollEventLoopGroup(1);
        try {
            Channel server = new ServerBootstrap()
                    .group(group)
                    .channel(EpollServerDomainSocketChannel.class)
                    .childHandler(new ChannelInitializer<DomainSocketChannel>() {
                        @Override
                        protected void initChannel(DomainSocketChannel ch) {
                            ch.pipeline().addLast(new JwslMessageDecoder(), JwslMessageEncoder.INSTANCE,
                                    new ServiceHandler(vm, blocking));
                        }
                    })
                    .bind(new DomainSocketAddress(socket.toString())).sync().channel();
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
            log.info("serving " + socket + " (config " + configFile + ", idle timeout " + config.idleTimeoutMs() + " ms)");
            server.closeFuture().sync();
        } finally {
            vm.shutdown(false);
            group.shutdownGracefully();
        }
    }
}
