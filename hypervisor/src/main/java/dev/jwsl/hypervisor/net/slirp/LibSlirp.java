package dev.jwsl.hypervisor.net.slirp;

import dev.jwsl.hypervisor.net.NetworkUnavailableException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The part of libslirp 4.x's API jwsl uses (Debian's {@code libslirp0}; the header is
 * {@code <slirp/libslirp.h>}), bound by hand: six functions and the layouts of
 * {@code SlirpConfig} version 4 and {@code SlirpCb} on x86_64 (offsets checked against the
 * header with offsetof).
 */
final class LibSlirp {
    /** The shared object, by soname. */
    static final String LIBRARY = "libslirp.so.0";

    /** SlirpConfig version 4: the fields up to disable_dhcp. */
    static final int CONFIG_VERSION = 4;
    static final long CONFIG_SIZE = 184;
    static final long CFG_VERSION = 0, CFG_RESTRICTED = 4, CFG_IN_ENABLED = 8, CFG_VNETWORK = 12,
            CFG_VNETMASK = 16, CFG_VHOST = 20, CFG_IN6_ENABLED = 24, CFG_VPREFIX_ADDR6 = 28,
            CFG_VPREFIX_LEN = 44, CFG_VHOST6 = 48, CFG_VHOSTNAME = 64, CFG_VDHCP_START = 96,
            CFG_VNAMESERVER = 100, CFG_VNAMESERVER6 = 104, CFG_IF_MTU = 136, CFG_IF_MRU = 144,
            CFG_DISABLE_HOST_LOOPBACK = 152, CFG_ENABLE_EMU = 153, CFG_DISABLE_DNS = 176, CFG_DISABLE_DHCP = 177;

    /** SlirpCb: eleven function pointers. */
    static final long CB_SIZE = 88;
    static final long CB_SEND_PACKET = 0, CB_GUEST_ERROR = 8, CB_CLOCK_GET_NS = 16, CB_TIMER_NEW = 24,
            CB_TIMER_FREE = 32, CB_TIMER_MOD = 40, CB_REGISTER_POLL_FD = 48, CB_UNREGISTER_POLL_FD = 56,
            CB_NOTIFY = 64, CB_INIT_COMPLETED = 72, CB_TIMER_NEW_OPAQUE = 80;

    /** SLIRP_POLL_* flags of add_poll and get_revents. */
    static final int POLL_IN = 1, POLL_OUT = 2, POLL_PRI = 4, POLL_ERR = 8, POLL_HUP = 16;

    /** Upcall signatures. */
    static final FunctionDescriptor SEND_PACKET = FunctionDescriptor.of(
            java.lang.foreign.ValueLayout.JAVA_LONG, ADDRESS, java.lang.foreign.ValueLayout.JAVA_LONG, ADDRESS);
    static final FunctionDescriptor GUEST_ERROR = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS);
    static final FunctionDescriptor CLOCK_GET_NS = FunctionDescriptor.of(java.lang.foreign.ValueLayout.JAVA_LONG, ADDRESS);
    static final FunctionDescriptor TIMER_FREE = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS);
    static final FunctionDescriptor TIMER_MOD = FunctionDescriptor.ofVoid(ADDRESS, java.lang.foreign.ValueLayout.JAVA_LONG, ADDRESS);
    static final FunctionDescriptor FD_OPAQUE = FunctionDescriptor.ofVoid(JAVA_INT, ADDRESS);
    static final FunctionDescriptor OPAQUE = FunctionDescriptor.ofVoid(ADDRESS);
    static final FunctionDescriptor INIT_COMPLETED = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS);
    static final FunctionDescriptor TIMER_NEW_OPAQUE = FunctionDescriptor.of(ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
    static final FunctionDescriptor ADD_POLL = FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS);
    static final FunctionDescriptor GET_REVENTS = FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS);

    final MethodHandle slirpNew;
    final MethodHandle slirpCleanup;
    final MethodHandle slirpInput;
    final MethodHandle slirpPollfdsFill;
    final MethodHandle slirpPollfdsPoll;
    final MethodHandle slirpHandleTimer;
    final MethodHandle slirpVersionString;

    private static volatile LibSlirp instance;

    private LibSlirp(SymbolLookup lib) {
        Linker linker = Linker.nativeLinker();
        slirpNew = linker.downcallHandle(find(lib, "slirp_new"), FunctionDescriptor.of(ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        slirpCleanup = linker.downcallHandle(find(lib, "slirp_cleanup"), FunctionDescriptor.ofVoid(ADDRESS));
        slirpInput = linker.downcallHandle(find(lib, "slirp_input"), FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_INT));
        slirpPollfdsFill = linker.downcallHandle(find(lib, "slirp_pollfds_fill"),
                FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        slirpPollfdsPoll = linker.downcallHandle(find(lib, "slirp_pollfds_poll"),
                FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        slirpHandleTimer = linker.downcallHandle(find(lib, "slirp_handle_timer"),
                FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, ADDRESS));
        slirpVersionString = linker.downcallHandle(find(lib, "slirp_version_string"), FunctionDescriptor.of(ADDRESS));
    }

    private static MemorySegment find(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new NetworkUnavailableException(LIBRARY + " has no " + name + " (libslirp 4.7 or later is needed)"));
    }

    /**
     * The library, loaded once for the process.
     *
     * @throws NetworkUnavailableException (one line) if libslirp is not installed
     */
    static LibSlirp load() {
        LibSlirp l = instance;
        if (l == null) {
            synchronized (LibSlirp.class) {
                if (instance == null) {
                    SymbolLookup lib;
                    try {
                        lib = SymbolLookup.libraryLookup(LIBRARY, Arena.global());
                    } catch (IllegalArgumentException e) {
                        throw new NetworkUnavailableException("cannot load " + LIBRARY + ": install it (apt-get install libslirp0)");
                    }
                    instance = new LibSlirp(lib);
                }
                l = instance;
            }
        }
        return l;
    }

    /** The library's version string, e.g. "4.7.0". */
    String version() {
        try {
            return ((MemorySegment) slirpVersionString.invokeExact()).reinterpret(64).getString(0);
        } catch (Throwable t) {
            return "?";
        }
    }
}
