"""Names a Batch compute node gives things in a task's environment.

Plain string rules with no dependencies, shared by the operators and the local emulator.
"""

from __future__ import annotations

import re


def linux_variable_name(application_id: str, version: str | None = None) -> str:
    """The variable a Linux node sets to a package's directory.

    As documented: periods, hyphens and number signs become underscores and the application id keeps
    its case; without a version (a reference to the default version) there is no version suffix.
    """
    name = application_id if version is None else f"{application_id}#{version}"
    return "AZ_BATCH_APP_PACKAGE_" + re.sub(r"[.#-]", "_", name)


__all__ = ["linux_variable_name"]
