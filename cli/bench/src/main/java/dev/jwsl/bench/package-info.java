/**
 * Benchmark drivers, not part of the product: the host halves of scripts/bench-net (NetBench)
 * and scripts/bench-9p-host (P9Bench). Built by those scripts with Maven profile {@code bench}.
 */
package dev.jwsl.bench;
