"""The provider's settings in Airflow's configuration: section ``[azure_batch_provider]``.

Every option can also be set as an ``AIRFLOW__AZURE_BATCH_PROVIDER__<OPTION>`` variable; the options
and their defaults are declared in :mod:`airflow_batch_provider.get_provider_info`.
"""

from __future__ import annotations

from typing import TypeVar

from airflow_batch_provider import __version__

CONF_SECTION = "azure_batch_provider"
#: Put in front of the SDKs' User-Agent, so requests of this provider can be told apart.
USER_AGENT = f"airflow-batch-provider/{__version__}"

N = TypeVar("N", int, float)


def conf_number(key: str, default: N) -> N:
    """The option ``key`` as a number of ``default``'s type; ``default`` if unset or unreadable.

    A bad value in the configuration must not break every hook, so it is ignored.
    """
    try:
        from airflow.sdk import conf

        if isinstance(default, int):
            return conf.getint(CONF_SECTION, key, fallback=default)
        return conf.getfloat(CONF_SECTION, key, fallback=default)
    except Exception:
        return default
