"""Deciding what a pool or a job is doing, the same way for operators, sensors and triggers.

The checks are coroutines over :class:`~.io.BatchIO`; the verdict logic is pure and tested on plain
dicts in the service's JSON shape."""
