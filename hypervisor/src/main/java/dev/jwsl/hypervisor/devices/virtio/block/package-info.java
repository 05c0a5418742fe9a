/**
 * virtio-blk (VIRTIO 1.2 5.2): a raw image file per device, with hot media change so the service
 * can attach a distro's disk to a running VM.
 */
package dev.jwsl.hypervisor.devices.virtio.block;
