"""The provider's settings in Airflow's configuration: section ``[azure_batch_provider]``.

:data:`OPTIONS` is the one table of options, types and defaults: the hooks read it through
:func:`conf_number` and :func:`conf_flag`, and ``get_provider_info`` publishes it to Airflow. Every
option can also be set as an ``AIRFLOW__AZURE_BATCH_PROVIDER__<OPTION>`` variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from airflow_batch_provider import __version__

CONF_SECTION = "azure_batch_provider"
#: Put in front of the SDKs' User-Agent, so requests of this provider can be told apart.
USER_AGENT = f"airflow-batch-provider/{__version__}"


@dataclass(frozen=True)
class Option:
    """One ``[azure_batch_provider]`` option: its type, default (``None``: unset) and meaning."""

    key: str
    type: Literal["integer", "float", "boolean", "string"]
    default: int | float | bool | None
    description: str
    example: str

    def as_provider_info(self) -> dict[str, Any]:
        """The option as Airflow's provider metadata declares it (defaults as strings)."""
        return {
            "description": self.description,
            "version_added": None,
            "type": self.type,
            "example": self.example,
            "default": None if self.default is None else str(self.default),
        }


#: Every option of the ``[azure_batch_provider]`` section.
OPTIONS: dict[str, Option] = {
    option.key: option
    for option in (
        Option(
            "retry_total",
            "integer",
            5,
            "Retries of a Batch request on throttling (429), 5xx and connection errors.",
            "10",
        ),
        Option(
            "retry_backoff_factor",
            "float",
            0.8,
            "Exponential backoff factor in seconds between retries (a Retry-After header wins).",
            "2",
        ),
        Option("retry_backoff_max", "float", 60.0, "Longest wait between two retries, in seconds.", "120"),
        Option(
            "add_tasks_concurrency",
            "integer",
            8,
            "Parallel add-task-collection requests (100 tasks each).",
            "16",
        ),
        Option(
            "add_tasks_attempts",
            "integer",
            5,
            "Attempts per chunk of tasks on per-task server errors or lost responses.",
            "3",
        ),
        Option(
            "http_logging",
            "boolean",
            False,
            "Log every Batch HTTP request and response (azure-core's INFO logging).",
            "True",
        ),
        Option(
            "blob_retry_total",
            "integer",
            5,
            "Retries of a Blob Storage request on 5xx answers, timeouts and dropped connections.",
            "10",
        ),
        Option(
            "blob_retry_initial_backoff",
            "float",
            15.0,
            "First wait before a Blob Storage retry, in seconds.",
            "5",
        ),
        Option(
            "blob_retry_increment_base",
            "float",
            3.0,
            "Base of the exponential growth of the Blob Storage retry wait.",
            "2",
        ),
        Option(
            "blob_retry_jitter",
            "float",
            3.0,
            "Random spread added to each Blob Storage retry wait, in seconds.",
            "1",
        ),
        Option(
            "digest_cache_dir",
            "string",
            None,
            "Where uploads keep the MD5 of files they read, so reruns need not read unchanged files "
            "again. Unset: $AIRFLOW_HOME/cache/airflow-batch-provider/digests. An empty value turns the "
            "cache off.",
            "/var/cache/airflow/digests",
        ),
    )
}


def conf_number(key: str) -> int | float:
    """The numeric option ``key``, typed by :data:`OPTIONS`; its default if unset or unreadable.

    A bad value in the configuration must not break every hook, so it is ignored.
    """
    option = OPTIONS[key]
    default = option.default
    if option.type not in ("integer", "float") or not isinstance(default, int | float):
        raise KeyError(f"{key} is not a numeric option of [{CONF_SECTION}]")
    try:
        from airflow.sdk import conf

        if option.type == "integer":
            return conf.getint(CONF_SECTION, key, fallback=int(default))
        return conf.getfloat(CONF_SECTION, key, fallback=float(default))
    except Exception:
        return default


def conf_flag(key: str) -> bool:
    """The boolean option ``key``; its default if unset or unreadable."""
    option = OPTIONS[key]
    if option.type != "boolean":
        raise KeyError(f"{key} is not a boolean option of [{CONF_SECTION}]")
    try:
        from airflow.sdk import conf

        return conf.getboolean(CONF_SECTION, key, fallback=bool(option.default))
    except Exception:
        return bool(option.default)


def provider_info_section() -> dict[str, Any]:
    """The ``config`` entry of the provider metadata, built from :data:`OPTIONS`."""
    return {
        CONF_SECTION: {
            "description": "Defaults of the Batch and Blob Storage hooks; hook arguments override them.",
            "options": {key: option.as_provider_info() for key, option in OPTIONS.items()},
        }
    }
