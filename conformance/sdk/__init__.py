"""azure-batch's own test suite, run live against the emulator with only its test infrastructure replaced.

``python -m conformance.sdk`` downloads the sdist of the installed azure-batch from PyPI, checks its
SHA-256 against :data:`conformance.sdk.suite.SDIST_SHA256`, extracts it under ``.conformance/``, lays
the shims of :mod:`conformance.sdk.shims` beside the original test files and runs them with pytest.
"""
