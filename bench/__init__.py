"""``make bench``: the provider's speed claims, each measured against its baseline in the same run.

Run ``python -m bench`` (full sizes, writes ``bench/results.json`` and ``docs/benchmarks.md``) or
``python -m bench --smoke --output DIR`` (tiny sizes, for the test suite). See :mod:`bench.cli`.
"""
