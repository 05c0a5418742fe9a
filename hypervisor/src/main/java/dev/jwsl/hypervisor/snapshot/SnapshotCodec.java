package dev.jwsl.hypervisor.snapshot;

import dev.jwsl.hypervisor.devices.legacy.Uart8250;
import dev.jwsl.hypervisor.kvm.Msr;
import dev.jwsl.hypervisor.kvm.VcpuState;
import dev.jwsl.hypervisor.kvm.VmState;
import dev.jwsl.hypervisor.virtio.QueueState;
import dev.jwsl.hypervisor.virtio.TransportState;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The state file's format: {@code "JWSLSNAP"}, a format version, the snapshot's id (which the
 * memory file's trailer repeats, so a state file never pairs with another snapshot's RAM), then
 * the {@link VmSnapshot} field by field (big-endian, each byte string and list with its length),
 * then a SHA-256 of everything before it. Decoding checks the digest first and every length
 * against a bound, so a truncated, corrupt or foreign file is refused with one line, never
 * half-read.
 */
public final class SnapshotCodec {
    /** Bumped whenever the layout below, or what a restore expects of the state, changes. */
    public static final int FORMAT_VERSION = 1;
    static final byte[] MAGIC = "JWSLSNAP".getBytes(StandardCharsets.US_ASCII);
    /** Larger than any state KVM hands out (XSAVE with AMX is ~11 KiB; the rest are smaller). */
    private static final int MAX_BLOB = 1 << 20;
    private static final int MAX_ITEMS = 4096;
    /** A state file is this at most: 64 vCPUs' blobs and MSRs are far below it. */
    public static final int MAX_FILE = 64 << 20;
    private static final int DIGEST = 32;

    private SnapshotCodec() {}

    /** The state file's bytes for {@code s}, whose RAM is in the memory file with trailer id {@code id}. */
    public static byte[] encode(VmSnapshot s, byte[] id) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.write(MAGIC);
            out.writeInt(FORMAT_VERSION);
            blob(out, id);
            blob(out, s.key().getBytes(StandardCharsets.UTF_8));
            out.writeInt(s.ram().size());
            for (long[] r : s.ram()) {
                out.writeLong(r[0]);
                out.writeLong(r[1]);
            }
            VmState vm = s.vm();
            for (byte[] b : List.of(vm.picMaster(), vm.picSlave(), vm.ioapic(), vm.pit(), vm.clock())) {
                blob(out, b);
            }
            out.writeInt(s.vcpus().size());
            for (VcpuState v : s.vcpus()) {
                out.writeInt(v.id());
                for (byte[] b : List.of(v.mpState(), v.regs(), v.sregs(), v.xsave(), v.xcrs(), v.debugRegs(), v.lapic())) {
                    blob(out, b);
                }
                out.writeInt(v.msrs().size());
                for (Msr m : v.msrs()) {
                    out.writeInt(m.index());
                    out.writeLong(m.value());
                }
                blob(out, v.events());
            }
            Uart8250.State c = s.console();
            for (int r : new int[] {c.ier(), c.lcr(), c.mcr(), c.scr(), c.fcr(), c.dll(), c.dlm()}) {
                out.writeInt(r);
            }
            out.writeBoolean(c.thrEmptyPending());
            out.writeBoolean(c.irqPending());
            blob(out, c.rx());
            out.writeInt(s.devices().size());
            for (TransportState t : s.devices()) {
                out.writeInt(t.deviceType());
                out.writeInt(t.status());
                out.writeLong(t.driverFeatures());
                out.writeInt(t.interruptStatus());
                out.writeInt(t.configGeneration());
                out.writeInt(t.queues().size());
                for (QueueState q : t.queues()) {
                    out.writeInt(q.size());
                    out.writeBoolean(q.ready());
                    out.writeLong(q.descTable());
                    out.writeLong(q.availRing());
                    out.writeLong(q.usedRing());
                    out.writeInt(q.nextAvail());
                    out.writeInt(q.nextUsed());
                    out.writeInt(q.signalledUsed());
                    out.writeBoolean(q.signalledValid());
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a ByteArrayOutputStream does not fail
        }
        byte[] body = bytes.toByteArray();
        byte[] file = Arrays.copyOf(body, body.length + DIGEST);
        System.arraycopy(sha256(body), 0, file, body.length, DIGEST);
        return file;
    }

    /** A decoded state file: the snapshot and the id its memory file must carry. */
    public record Decoded(VmSnapshot snapshot, byte[] id) {}

    /**
     * Decodes a state file.
     *
     * @throws SnapshotException saying what is wrong: not a snapshot, another format version, a
     *                           digest that does not match (truncated or corrupt), or a bad field
     */
    public static Decoded decode(byte[] file) {
        if (file.length < MAGIC.length + 4 + DIGEST || !Arrays.equals(file, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
            throw new SnapshotException("not a jwsl snapshot");
        }
        ByteBuffer in = ByteBuffer.wrap(file, 0, file.length - DIGEST);
        in.position(MAGIC.length);
        int version = in.getInt();
        if (version != FORMAT_VERSION) {
            throw new SnapshotException("snapshot format " + version + ", this jwsl reads format " + FORMAT_VERSION);
        }
        byte[] digest = sha256(Arrays.copyOf(file, file.length - DIGEST));
        if (!MessageDigest.isEqual(digest, Arrays.copyOfRange(file, file.length - DIGEST, file.length))) {
            throw new SnapshotException("the snapshot's state file is corrupt or truncated (checksum mismatch)");
        }
        try {
            byte[] id = blob(in);
            String key = new String(blob(in), StandardCharsets.UTF_8);
            List<long[]> ram = new ArrayList<>();
            for (int i = count(in); i > 0; i--) {
                ram.add(new long[] {in.getLong(), in.getLong()});
            }
            VmState vm = new VmState(blob(in), blob(in), blob(in), blob(in), blob(in));
            List<VcpuState> vcpus = new ArrayList<>();
            for (int i = count(in); i > 0; i--) {
                int vcpuId = in.getInt();
                byte[] mp = blob(in), regs = blob(in), sregs = blob(in), xsave = blob(in), xcrs = blob(in);
                byte[] debug = blob(in), lapic = blob(in);
                List<Msr> msrs = new ArrayList<>();
                for (int m = count(in); m > 0; m--) {
                    msrs.add(new Msr(in.getInt(), in.getLong()));
                }
                vcpus.add(new VcpuState(vcpuId, mp, regs, sregs, xsave, xcrs, debug, lapic, msrs, blob(in)));
            }
            Uart8250.State console = new Uart8250.State(in.getInt(), in.getInt(), in.getInt(), in.getInt(), in.getInt(),
                    in.getInt(), in.getInt(), in.get() != 0, in.get() != 0, blob(in));
            List<TransportState> devices = new ArrayList<>();
            for (int i = count(in); i > 0; i--) {
                int type = in.getInt(), status = in.getInt();
                long features = in.getLong();
                int interruptStatus = in.getInt(), generation = in.getInt();
                List<QueueState> queues = new ArrayList<>();
                for (int q = count(in); q > 0; q--) {
                    queues.add(new QueueState(in.getInt(), in.get() != 0, in.getLong(), in.getLong(), in.getLong(),
                            in.getInt(), in.getInt(), in.getInt(), in.get() != 0));
                }
                devices.add(new TransportState(type, status, features, interruptStatus, generation, queues));
            }
            if (in.hasRemaining()) {
                throw new SnapshotException("the snapshot's state file has " + in.remaining() + " bytes too many");
            }
            return new Decoded(new VmSnapshot(key, ram, vm, vcpus, console, devices), id);
        } catch (BufferUnderflowException e) {
            throw new SnapshotException("the snapshot's state file ends early");
        }
    }

    private static void blob(DataOutputStream out, byte[] b) throws IOException {
        out.writeInt(b.length);
        out.write(b);
    }

    private static byte[] blob(ByteBuffer in) {
        int n = in.getInt();
        if (n < 0 || n > MAX_BLOB || n > in.remaining()) {
            throw new SnapshotException("the snapshot's state file has a field of " + n + " bytes");
        }
        byte[] b = new byte[n];
        in.get(b);
        return b;
    }

    private static int count(ByteBuffer in) {
        int n = in.getInt();
        if (n < 0 || n > MAX_ITEMS) {
            throw new SnapshotException("the snapshot's state file has a list of " + n + " items");
        }
        return n;
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }
}
