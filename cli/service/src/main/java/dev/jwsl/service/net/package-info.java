/** The host side of the guest's network: localhost forwarding of guest TCP listeners over vsock. */
package dev.jwsl.service.net;
