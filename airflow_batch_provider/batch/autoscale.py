"""Autoscale formula templates for ``BatchCreatePoolOperator(auto_scale_formula=...)``."""

from __future__ import annotations

from airflow_batch_provider.exceptions import InvalidInputError


def spot_with_dedicated_fallback(
    *,
    max_spot_nodes: int,
    max_dedicated_nodes: int,
    min_dedicated_nodes: int = 0,
    tasks_per_node: int = 1,
    sample_minutes: int = 5,
) -> str:
    """A formula that runs the pending work on Spot nodes and replaces preempted Spot nodes by dedicated ones.

    Each evaluation sizes the Spot nodes to the tasks waiting or running (the most seen in the last
    ``sample_minutes``, ``tasks_per_node`` per node, at most ``max_spot_nodes``), and asks for as many
    dedicated nodes as Spot nodes are preempted right now (at least ``min_dedicated_nodes``, at most
    ``max_dedicated_nodes``). Nodes are released once their tasks finish, so no work is requeued by a
    shrink. Pass the result as ``auto_scale_formula``.
    """
    counts = {
        "max_spot_nodes": max_spot_nodes,
        "max_dedicated_nodes": max_dedicated_nodes,
        "min_dedicated_nodes": min_dedicated_nodes,
        "tasks_per_node": tasks_per_node,
        "sample_minutes": sample_minutes,
    }
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidInputError(f"{name} must be a whole number >= 0, got {value!r}.")
    if tasks_per_node < 1 or sample_minutes < 1:
        raise InvalidInputError("tasks_per_node and sample_minutes must be at least 1.")
    if min_dedicated_nodes > max_dedicated_nodes:
        raise InvalidInputError(
            f"min_dedicated_nodes ({min_dedicated_nodes}) is above "
            f"max_dedicated_nodes ({max_dedicated_nodes}): lower it or raise the maximum."
        )
    window = f"TimeInterval_Minute * {sample_minutes}"
    return "\n".join(
        (
            f"waiting = max($ActiveTasks.GetSample({window}));",
            f"running = max($RunningTasks.GetSample({window}));",
            f"work = ceil((waiting + running) / {tasks_per_node});",
            f"$TargetLowPriorityNodes = min({max_spot_nodes}, work);",
            f"standIns = min({max_dedicated_nodes}, $PreemptedNodeCount);",
            f"$TargetDedicatedNodes = max({min_dedicated_nodes}, standIns);",
            "$NodeDeallocationOption = taskcompletion;",
        )
    )


__all__ = ["spot_with_dedicated_fallback"]
