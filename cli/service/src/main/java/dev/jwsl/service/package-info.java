/**
 * The per-user service: one utility VM ({@link dev.jwsl.service.UtilityVm}), the distro registry
 * and life cycle ({@link dev.jwsl.service.DistroService}), and the request handler the wsl client
 * talks to over a Unix socket. Sub-packages: {@code distro} (registry, archive gate), {@code net}
 * (localhost forwarding), {@code share} (9P over sockets), {@code wire} (Netty framing),
 * {@code tools} (the jwsl-vmm and jwsl-9p programs).
 */
package dev.jwsl.service;
