"""Conformance runs: clients the project did not write, driven against the emulator (``make conformance``)."""
