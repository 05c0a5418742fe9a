/**
 * The {@code wsl} command: picocli options, the service connection (started on demand) and the
 * guest relay session a command runs in. It holds no service or VMM code (ArchitectureTest): each
 * call starts a JVM, and only what the exec path needs is loaded.
 */
package dev.jwsl.cli;
