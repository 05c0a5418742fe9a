package dev.jwsl.hypervisor.p9;

/** The wire constants the tests use, from the package-private {@link P9Constants}. */
final class P9ConstantsView {
    static final int ATTR_MODE = P9Constants.ATTR_MODE, ATTR_SIZE = P9Constants.ATTR_SIZE,
            ATTR_MTIME = P9Constants.ATTR_MTIME, ATTR_MTIME_SET = P9Constants.ATTR_MTIME_SET,
            AT_REMOVEDIR = P9Constants.AT_REMOVEDIR;

    private P9ConstantsView() {}
}
