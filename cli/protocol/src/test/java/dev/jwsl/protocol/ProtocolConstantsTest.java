package dev.jwsl.protocol;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Map;

class ProtocolConstantsTest {
    /** The native client speaks the service protocol from this header: it must agree with the Java side. */
    @Test
    void constantsMatchTheNativeClientsHeader() throws IOException {
        CHeader.at("cli/protocol/src/main/c/service_protocol.h").assertDefines("JWSL_SERVICE_", Map.of(
                "HEADER_SIZE", ProtocolConstants.HEADER_SIZE, "MAX_PAYLOAD", ProtocolConstants.MAX_PAYLOAD,
                "ENSURE_VM", ProtocolConstants.ENSURE_VM, "VM_READY", ProtocolConstants.VM_READY,
                "STATUS", ProtocolConstants.STATUS, "STATUS_REPLY", ProtocolConstants.STATUS_REPLY,
                "ERROR", ProtocolConstants.ERROR, "PROGRESS", ProtocolConstants.PROGRESS));
    }
}
