"""The Azure CLI (``az batch``) as a conformance client of the Batch emulator.

Run from the repository root: ``python -m conformance.cli --results build/conformance/cli.json``.
"""
