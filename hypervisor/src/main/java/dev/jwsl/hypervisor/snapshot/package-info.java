/**
 * Snapshots of a booted VM (issue 19): what KVM, the devices and guest RAM hold, written once
 * and restored on every start. {@link dev.jwsl.hypervisor.snapshot.VmSnapshot} is the state,
 * {@link dev.jwsl.hypervisor.snapshot.SnapshotCodec} its file format, and
 * {@link dev.jwsl.hypervisor.snapshot.SnapshotFiles} the crash-safe files in a directory.
 */
package dev.jwsl.hypervisor.snapshot;
