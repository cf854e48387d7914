"""The service's node, resize and job states, and how to read them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Node states that can run tasks.
USABLE_NODE_STATES = frozenset({"idle", "running"})

#: Node states that cannot become usable without a reboot or reimage.
BAD_NODE_STATES = frozenset({"starttaskfailed", "unusable"})

#: Node states that will not become usable on their own.
GONE_NODE_STATES = frozenset({"leavingpool", "offline", "deallocated", "deallocating"})

#: Resize error codes that are transient on an autoscale pool (the next evaluation retries).
TRANSIENT_RESIZE_ERRORS = frozenset({"allocationtimedout"})


def lowered(value: Any) -> str:
    """A state or code as the checks compare it: a lower-case string, ``""`` when missing."""
    return str(value or "").strip().lower()


def job_has_ended(job: Mapping[str, Any]) -> bool:
    """Whether the job is completed, terminating or being deleted: its tasks will not run any more."""
    return lowered(job.get("state")) in ("completed", "terminating", "deleting")
