"""Benchmarks of the service against bare RQ: `make bench` (`python -m bench.run`)."""
