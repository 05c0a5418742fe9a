package dev.jwsl.service;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DistroDisksTest {
    @Test
    void theFirstTarComplaintAboutAMemberIsTheError() {
        String name = "d/" + "m".repeat(4096);
        GuestShell.Result res = new GuestShell.Result(2, "", "/tools/bin/tar: " + name + ": Cannot open: File name too long\n"
                + "/tools/bin/tar: b/tmp/evil: Cannot open: Not a directory\n"
                + "/tools/bin/tar: Exiting with failure status due to previous errors\n");
        String e = DistroDisks.tarError(res);
        assertTrue(e.startsWith("tar: d/mmm") && e.endsWith(": Cannot open: File name too long"), e);
        assertTrue(e.length() <= 200, e);
        assertEquals("cannot mount the new disk",
                DistroDisks.tarError(new GuestShell.Result(1, "", "cannot mount the new disk\n")));
        assertEquals("exit status 9", DistroDisks.tarError(new GuestShell.Result(9, "", "")));
    }
}
