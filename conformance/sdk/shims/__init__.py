"""The files laid beside azure-batch's original tests: they replace its test infrastructure only.

``conftest.py``, ``batch_preparers.py`` and ``decorators.py`` replace the sdist's files of the same
name; ``devtools_testutils`` replaces the Azure SDK repository's test framework (not on PyPI);
``emulated_account.py`` holds the one emulator (with Azurite as auto-storage) the session runs.
"""
