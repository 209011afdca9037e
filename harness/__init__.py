"""The test and benchmark harness: the real stack started on loopback (not part of the production packages)."""
