package dev.jwsl.service;

import dev.jwsl.hypervisor.vmm.VmStartException;
import dev.jwsl.service.protocol.JwslMessage;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;

import java.util.concurrent.ExecutorService;

/**
 * One client connection: maps requests onto {@link JwslService}. Slow work (booting) runs on
 * {@code blocking}, never on the event loop. A lease taken by this connection is released when
 * the connection closes; garbage closes the connection.
 */
final class ServiceHandler extends SimpleChannelInboundHandler<JwslMessage> {
    private static final System.Logger LOG = System.getLogger(ServiceHandler.class.getName());

    private final JwslService service;
    private final ExecutorService blocking;
    private JwslService.Lease lease;
    private boolean closed;

    ServiceHandler(JwslService service, ExecutorService blocking) {
        this.service = service;
        this.blocking = blocking;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, JwslMessage msg) {
        switch (msg) {
            case JwslMessage.EnsureVm e -> blocking.execute(() -> {
                JwslMessage reply;
                try {
                    JwslService.Lease l = service.ensureVm(e.transactionId());
                    if (!keep(l)) {
                        return;
                    }
                    reply = l.ready();
                } catch (VmStartException ex) {
                    reply = new JwslMessage.Error(e.transactionId(), ex.getMessage());
                } catch (InterruptedException ex) {
                    Thread.currentThread().interrupt();
                    reply = new JwslMessage.Error(e.transactionId(), "the service is stopping");
                } catch (RuntimeException ex) {
                    LOG.log(System.Logger.Level.ERROR, "starting the VM failed", ex);
                    reply = new JwslMessage.Error(e.transactionId(), "cannot start the VM: " + ex);
                }
                ctx.writeAndFlush(reply);
            });
            case JwslMessage.Status s -> ctx.writeAndFlush(service.status(s.transactionId()));
            case JwslMessage.Shutdown s -> blocking.execute(() -> {
                service.shutdown(s.force());
                ctx.writeAndFlush(new JwslMessage.Done(s.transactionId()));
            });
            case JwslMessage.Response r -> {
                LOG.log(System.Logger.Level.WARNING, "client sent a response message: closing");
                ctx.close();
            }
        }
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
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.log(System.Logger.Level.WARNING, "closing client connection: {0}", cause.getMessage());
        ctx.close();
    }
}
