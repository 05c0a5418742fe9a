package dev.jwsl.hypervisor.p9;

/** A server-unique file identity (9P qid): type, version, and a path unique across devices. */
record Qid(byte type, int version, long path) {}
