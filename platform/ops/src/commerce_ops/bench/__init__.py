"""`ops bench`: throughput, latency and memory of the services, measured as ratios in one run (BENCHMARKS.md)."""
