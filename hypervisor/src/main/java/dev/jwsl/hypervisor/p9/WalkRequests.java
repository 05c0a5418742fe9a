package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.util.ArrayList;
import java.util.List;

import static dev.jwsl.hypervisor.p9.P9Constants.MAX_WALK;
import static dev.jwsl.hypervisor.p9.P9Constants.QTDIR;

/** Tattach and Twalk: how a client gets a fid for a file at all. */
record WalkRequests(P9Server server, FidTable fids) {
    void attach(P9Reader in, P9Writer out) {
        int fid = in.u32();
        in.u32(); // afid: no authentication
        in.name(); // uname: the uid (n_uname) says who
        String aname = in.str();
        int uid = in.atEnd() ? HostUser.NO_UID : in.u32();
        fids.requireUnused(fid);
        P9Server.ShareRoot share = server.share(aname).orElseThrow(() -> new P9Error(Errno.ENOENT, "no share " + aname));
        HostUser user = server.privileged() ? HostUser.lookup(uid) : null;
        int fd = HostFs.openat2(share.fd(), HostFs.DOT, HostFs.O_PATH | HostFs.O_DIRECTORY | HostFs.O_CLOEXEC, 0,
                HostFs.RESOLVE_BENEATH);
        Fid f;
        try {
            f = new Fid(share, fd, user, server.qid(HostFs.stat(fd)));
        } catch (P9Error e) {
            HostFs.close(fd);
            throw e;
        }
        fids.install(fid, f);
        out.qid(f.qid);
    }

    void walk(P9Reader in, P9Writer out, List<Fid> held) {
        int fidNo = in.u32();
        int newNo = in.u32();
        int n = in.u16();
        if (n > MAX_WALK) {
            throw new P9Error(Errno.EINVAL, "walk of " + n + " names");
        }
        List<byte[]> names = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            names.add(in.name());
        }
        Fid from = fids.use(fidNo, held);
        if (from.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (newNo != fidNo) {
            fids.requireUnused(newNo);
        }
        List<Qid> qids = new ArrayList<>(n);
        int cur = -1; // owned descriptor of the last step; -1 while still at "from"
        Qid curQid = from.qid;
        try {
            for (byte[] name : names) {
                int at = cur >= 0 ? cur : from.pathFd;
                int next;
                try {
                    if (curQid.type() != QTDIR) {
                        throw new P9Error(Errno.ENOTDIR);
                    }
                    next = Confinement.step(from.share, at, name);
                } catch (P9Error e) {
                    if (qids.isEmpty()) {
                        throw e;
                    }
                    break; // a partial walk answers the qids it got and makes no fid
                }
                HostFs.close(cur);
                cur = next;
                curQid = server.qid(HostFs.stat(cur));
                qids.add(curQid);
            }
            if (qids.size() == n) {
                int fd = cur >= 0 ? cur : HostFs.dup(from.pathFd);
                cur = -1;
                fids.install(newNo, new Fid(from.share, fd, from.user, curQid));
            }
        } finally {
            HostFs.close(cur);
        }
        out.u16(qids.size());
        for (Qid q : qids) {
            out.qid(q);
        }
    }
}
