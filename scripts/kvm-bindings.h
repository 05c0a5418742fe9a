/* Wrapper header for jextract: see scripts/gen-kvm-bindings. libc is bound by hand in
 * dev.jwsl.hypervisor.sys.LibC, so only the KVM uapi header is parsed. */
#include <linux/kvm.h>
