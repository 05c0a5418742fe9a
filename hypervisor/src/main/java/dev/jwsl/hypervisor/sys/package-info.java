/**
 * Hand-written libc access: the one linker of errno-capturing downcalls
 * ({@link dev.jwsl.hypervisor.sys.Downcall}), with one {@code syscall(2)} handle that the VMM's
 * system calls share (every distinct FFM function shape costs a generated class at start-up),
 * the calls jwsl makes ({@link dev.jwsl.hypervisor.sys.LibC}) and small owners of kernel objects
 * such as {@link dev.jwsl.hypervisor.sys.EventFd}.
 *
 * <p>Every failing call becomes a {@link dev.jwsl.hypervisor.sys.SysCallException} naming the call
 * and its errno; callers wrap it into their own package's exception with a precise reason.
 */
package dev.jwsl.hypervisor.sys;
