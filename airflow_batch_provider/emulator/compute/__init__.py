"""The emulated compute nodes: the scheduler that places tasks on nodes, and the runner that runs them.

- ``scheduler``: assigns queued tasks to idle node slots and records their outcomes;
- ``runner``: runs one task (or start task, preparation/release task) as a local process or container.
"""
