"""Conformance suites: clients the project did not write, run against the emulator (``make conformance``)."""
