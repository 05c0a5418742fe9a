package dev.jwsl.service;

import dev.jwsl.hypervisor.vmm.VmStartException;
import dev.jwsl.service.distro.ArchiveException;
import dev.jwsl.protocol.JwslMessage;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;

/**
 * One client connection: maps requests onto {@link JwslService}. Slow work (booting, importing)
 * runs on {@code blocking}, never on the event loop. A lease taken by this connection is released
 * when the connection closes; garbage closes the connection.
 */
final class ServiceHandler extends SimpleChannelInboundHandler<JwslMessage> {
    private static final System.Logger LOG = System.getLogger(ServiceHandler.class.getName());
    /** Progress frames at most this often: a terminal redraw, not a flood. */
    private static final long PROGRESS_INTERVAL_NS = 100_000_000L;

    private final JwslService service;
    private final ExecutorService blocking;
    private JwslService.Lease lease;
    private boolean closed;
    /** Cancelled when the client goes away (Ctrl-C ends it too): what it started stops. */
    private final Cancellation gone = new Cancellation();

    ServiceHandler(JwslService service, ExecutorService blocking) {
        this.service = service;
        this.blocking = blocking;
    }

    /** A request's work; what it returns is the reply. */
    @FunctionalInterface
    private interface Work {
        JwslMessage.Response run() throws IOException, InterruptedException;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, JwslMessage msg) {
        long tx = msg.transactionId();
        switch (msg) {
            case JwslMessage.EnsureVm e -> later(ctx, tx, () -> {
                JwslService.Lease l = service.ensureVm(tx, e.distro(), e.system());
                return keep(l) ? l.ready() : null;
            });
            case JwslMessage.Status s -> ctx.writeAndFlush(service.status(tx));
            case JwslMessage.Shutdown s -> later(ctx, tx, () -> {
                service.shutdown(s.force());
                return new JwslMessage.Done(tx);
            });
            case JwslMessage.ListDistros l -> later(ctx, tx, () -> new JwslMessage.DistroList(tx, service.list()));
            case JwslMessage.Import i -> later(ctx, tx, () -> {
                service.importDistro(i.name(), Path.of(i.installDir()), Path.of(i.archive()), i.diskBytes(),
                        progress(ctx, tx), gone);
                return new JwslMessage.Done(tx);
            });
            case JwslMessage.FollowImport f -> later(ctx, tx, () -> {
                service.followImport(f.name(), progress(ctx, tx), gone);
                return new JwslMessage.Done(tx);
            });
            case JwslMessage.ImportInPlace i -> later(ctx, tx, () -> {
                service.importInPlace(i.name(), Path.of(i.image()));
                return new JwslMessage.Done(tx);
            });
            case JwslMessage.Export x -> later(ctx, tx, () -> {
                service.export(x.name(), Path.of(x.output()), x.format(), progress(ctx, tx));
                return new JwslMessage.Done(tx);
            });
            case JwslMessage.Unregister u -> later(ctx, tx, () -> {
                service.unregister(u.name());
                return new JwslMessage.Done(tx);
            });
            case JwslMessage.SetDefault d -> later(ctx, tx, () -> {
                service.setDefault(d.name());
                return new JwslMessage.Done(tx);
            });
            case JwslMessage.Terminate t -> later(ctx, tx, () -> {
                service.terminate(t.name());
                return new JwslMessage.Done(tx);
            });
            case JwslMessage.Manage m -> later(ctx, tx, () -> {
                service.manage(m.name(), m.resizeBytes(), m.defaultUser());
                return new JwslMessage.Done(tx);
            });
            case JwslMessage.Response r -> {
                LOG.log(System.Logger.Level.WARNING, "client sent a response message: closing");
                ctx.close();
            }
        }
    }

    /** Runs {@code work} off the event loop and replies with its result or a one-line error. */
    private void later(ChannelHandlerContext ctx, long tx, Work work) {
        blocking.execute(() -> {
            JwslMessage.Response reply;
            try {
                reply = work.run();
                if (reply == null) {
                    return; // the client went away
                }
            } catch (VmStartException | IllegalArgumentException | IllegalStateException | ArchiveException e) {
                if (gone.cancelled()) {
                    return; // nobody to tell
                }
                reply = new JwslMessage.Error(tx, e.getMessage());
            } catch (java.nio.file.NoSuchFileException e) {
                reply = new JwslMessage.Error(tx, "no such file: " + e.getMessage());
            } catch (java.nio.file.AccessDeniedException e) {
                reply = new JwslMessage.Error(tx, "permission denied: " + e.getMessage());
            } catch (IOException e) {
                reply = new JwslMessage.Error(tx, e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                reply = new JwslMessage.Error(tx, "the service is stopping");
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "request failed", e);
                reply = new JwslMessage.Error(tx, "internal error: " + e);
            }
            ctx.writeAndFlush(reply);
        });
    }

    private static JwslService.Progress progress(ChannelHandlerContext ctx, long tx) {
        long[] last = {0};
        String[] lastPhase = {""};
        return (phase, done, total) -> {
            long now = System.nanoTime();
            if (!phase.equals(lastPhase[0]) || done == total || now - last[0] >= PROGRESS_INTERVAL_NS) {
                last[0] = now;
                lastPhase[0] = phase;
                ctx.writeAndFlush(new JwslMessage.Progress(tx, phase, done, total));
            }
        };
    }

    /** Keeps {@code l} for this connection, or releases it at once if the connection is gone. */
    private synchronized boolean keep(JwslService.Lease l) {
        if (closed) {
            l.close();
            return false;
        }
        if (lease != null) {
            lease.close();
        }
        lease = l;
        return true;
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        synchronized (this) {
            closed = true;
            if (lease != null) {
                lease.close();
                lease = null;
            }
        }
        // the hooks talk to the guest: not on the event loop
        Thread.ofVirtual().name("client-gone").start(() -> gone.cancel("the client went away"));
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.log(System.Logger.Level.WARNING, "closing client connection: {0}", cause.getMessage());
        ctx.close();
    }
}
