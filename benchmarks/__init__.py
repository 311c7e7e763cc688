"""Benchmarks: mcpfence next to nginx and a bare forwarder (see README.md)."""
