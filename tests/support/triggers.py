"""Running a trigger as a triggerer does: re-created from its arguments as Airflow's trigger table
holds them (JSON), and its events collected."""

from __future__ import annotations

import json
from typing import Any


async def events_of(trigger: Any) -> list[dict[str, Any]]:
    """Every event ``trigger.run()`` yields, as payloads."""
    return [event.payload async for event in trigger.run()]


def stored_kwargs(trigger: Any) -> dict[str, Any]:
    """The trigger's arguments as Airflow's trigger table holds them, which a triggerer reads."""
    return json.loads(json.dumps(trigger.serialize()[1]))


def recreated(trigger: Any) -> Any:
    """A new trigger of the same class from :func:`stored_kwargs`: what a (restarted) triggerer runs."""
    return type(trigger)(**stored_kwargs(trigger))
