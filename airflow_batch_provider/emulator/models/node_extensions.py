"""The VM extensions a node reports: the pool's ``virtualMachineConfiguration.extensions`` and the
Batch node agent's own extension, with the instance view the service shows once the node has booted.

Nothing is installed: an extension is reported provisioned when the node has booted, ``Creating``
before. ``protectedSettings`` never leave the service, as on the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_batch_provider.emulator.errors import invalid_property, missing_property, resource_not_found
from airflow_batch_provider.emulator.models.base import get_list, get_str
from airflow_batch_provider.emulator.serialization import format_datetime

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.models.nodes import Node

#: The extension through which Batch installs its node agent, listed after the pool's own.
_AGENT_EXTENSION = {
    "linux": {
        "name": "batchNodeExtension",
        "publisher": "Microsoft.Azure.Extensions",
        "type": "CustomScript",
        "typeHandlerVersion": "2.1",
        "autoUpgradeMinorVersion": True,
    },
    "windows": {
        "name": "batchNodeExtension",
        "publisher": "Microsoft.Compute",
        "type": "CustomScriptExtension",
        "typeHandlerVersion": "1.10",
        "autoUpgradeMinorVersion": True,
    },
}


def validate_extensions(configuration: dict[str, Any], path: str = "virtualMachineConfiguration") -> None:
    """400 for extensions the service refuses: missing name/publisher/type, duplicate names, or a
    ``provisionAfterExtensions`` entry naming no other extension of the pool."""
    extensions = get_list(configuration, "extensions", f"{path}/extensions") or []
    names: list[str] = []
    for index, extension in enumerate(extensions):
        item = f"{path}/extensions[{index}]"
        for required in ("name", "publisher", "type"):
            if not get_str(extension, required, f"{item}/{required}"):
                raise missing_property(f"{item}/{required}")
        name = str(extension["name"])
        if name.lower() in names:
            raise invalid_property(f"{item}/name", name, "Extension names must be unique in a pool.")
        names.append(name.lower())
    for index, extension in enumerate(extensions):
        after = get_list(
            extension, "provisionAfterExtensions", f"{path}/extensions[{index}]/provisionAfterExtensions"
        )
        for other in after or []:
            if str(other).lower() not in names or str(other).lower() == str(extension["name"]).lower():
                raise invalid_property(
                    f"{path}/extensions[{index}]/provisionAfterExtensions",
                    other,
                    "Each entry must name another extension of the pool.",
                )


def node_extensions(node: Node) -> list[dict[str, Any]]:
    """``GET .../extensions``: one ``BatchNodeVMExtension`` per extension of the node."""
    configuration = node.pool.properties.get("virtualMachineConfiguration") or {}
    declared = [dict(extension) for extension in configuration.get("extensions") or []]
    declared.append(dict(_AGENT_EXTENSION["windows" if node.pool.windows else "linux"]))
    return [_view(node, extension) for extension in declared]


def node_extension(node: Node, name: str) -> dict[str, Any]:
    """One extension by name (case-insensitive); 404 ``ExtensionNotFound`` when the node has none."""
    for view in node_extensions(node):
        if str(view["vmExtension"].get("name", "")).lower() == name.lower():
            return view
    raise resource_not_found("extension")


def _view(node: Node, extension: dict[str, Any]) -> dict[str, Any]:
    extension.pop("protectedSettings", None)
    if node.last_boot_time is None:
        return {"provisioningState": "Creating", "vmExtension": extension}
    status = {
        "code": "ProvisioningState/succeeded",
        "level": "Info",
        "displayStatus": "Provisioning succeeded",
        "message": "Enable succeeded",
        "time": format_datetime(node.last_boot_time),
    }
    return {
        "provisioningState": "Succeeded",
        "vmExtension": extension,
        "instanceView": {"name": extension.get("name"), "statuses": [status]},
    }
