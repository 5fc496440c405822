"""Benchmarks of gearman-proto: ``benchmarks/run`` (the end-to-end harness) and parser.py."""
