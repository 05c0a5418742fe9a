/**
 * Distributions: the registry of imported distros, their ext4 disks, and the import/export
 * pipeline that runs through the utility VM (its tools disk formats and unpacks; the host checks
 * archives and moves bytes).
 */
package dev.jwsl.service.distro;
