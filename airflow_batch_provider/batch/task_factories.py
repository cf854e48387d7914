"""Task factories: build the tasks of :class:`~airflow_batch_provider.operators.tasks.BatchAddTasksOperator`.

A factory is a small object with ``template_fields`` (Airflow renders them, nested Jinja included) and a
``build(ctx)`` method called at execute time, when SAS tokens can be minted. Factories return tasks in
the REST shape with *local* ids; the operator prefixes the ids, adds the common settings, validates
everything and submits.

* :class:`ParametricSweep`: one task per combination of parameter values.
* :class:`BlobPrefixTasks`: one task per blob under a container prefix; the blob is the task's
  resource file (downloaded next to the command).
* :class:`TasksFromUpload`: the same, for the blobs an upload operator reported in its XCom.
"""

from __future__ import annotations

import itertools
import posixpath
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from airflow_batch_provider.batch.ids import make_batch_id
from airflow_batch_provider.batch.rest import to_rest
from airflow_batch_provider.exceptions import InvalidInputError

#: Local id length for factory tasks, so that ``<prefix>-<local id>`` fits in 64 characters.
LOCAL_ID_MAX = 24
_MANIFEST_DIR = "_airflow_manifests/"


@dataclass
class TaskBuildContext:
    """What factories may use at execute time."""

    #: Returns a Blob hook for a connection id.
    blob_hook: Callable[[str], Any]
    #: Every SAS minted for these tasks must last until then.
    sas_expiry: datetime
    #: A managed identity (``{"resourceId": ...}``) to use instead of SAS, or ``None``.
    identity_reference: Mapping[str, Any] | None = None
    #: Read SAS query strings already minted, by (connection, container).
    _sas_cache: dict[tuple[str, str], str] = field(default_factory=dict)

    def blob_read_url(self, conn_id: str, container: str, blob: str) -> dict[str, Any]:
        """A ``resourceFiles`` source for one blob: SAS URL, or plain URL with the identity."""
        hook = self.blob_hook(conn_id)
        if self.identity_reference:
            return {
                "httpUrl": hook.blob_url(container, blob),
                "identityReference": dict(self.identity_reference),
            }
        key = (conn_id, container)
        if key not in self._sas_cache:
            sas_url = hook.get_container_sas_url(container, "read", expiry=self.sas_expiry)
            self._sas_cache[key] = sas_url.split("?", 1)[1] if "?" in sas_url else ""
        token = self._sas_cache[key]
        url = hook.blob_url(container, blob)
        return {"httpUrl": f"{url}?{token}" if token else url}


class TaskFactory(Protocol):
    """Anything with ``build(ctx) -> list[dict]``."""

    template_fields: Sequence[str]

    def build(self, ctx: TaskBuildContext) -> list[dict[str, Any]]: ...


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _format(template: str, values: Mapping[str, Any], what: str) -> str:
    try:
        return template.format(**values)
    except KeyError as err:
        raise InvalidInputError(
            f"{what} {template!r} uses {{{err.args[0]}}}, which is not available; available: "
            f"{', '.join(sorted(values))}. Double literal braces as {{{{ and }}}}."
        ) from None
    except (IndexError, ValueError) as err:
        raise InvalidInputError(f"{what} {template!r} is not a valid format string: {err}.") from None


def _local_id(value: str) -> str:
    return make_batch_id(value, max_length=LOCAL_ID_MAX)


class _Factory:
    """Shared by the factories: a readable repr (shown as the rendered template field in the UI)."""

    template_fields: Sequence[str] = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name, None)!r}" for name in self.template_fields)
        return f"{type(self).__name__}({args})"


class ParametricSweep(_Factory):
    """One task per combination of parameter values (their Cartesian product).

    ``ParametricSweep("python sim.py --alpha {alpha} --seed {seed}", {"alpha": [0.1, 0.2], "seed": [1, 2]})``
    makes four tasks. Ids are ``{index:05d}`` unless ``id_template`` (same placeholders plus
    ``{index}``) is given. ``task`` holds further REST fields for every task.
    """

    template_fields: Sequence[str] = ("command_line", "parameters", "id_template", "task")

    def __init__(
        self,
        command_line: str,
        parameters: Mapping[str, Sequence[Any]],
        *,
        id_template: str | None = None,
        task: Mapping[str, Any] | None = None,
    ) -> None:
        self.command_line = command_line
        self.parameters = parameters
        self.id_template = id_template
        self.task = task

    def build(self, ctx: TaskBuildContext | None = None) -> list[dict[str, Any]]:
        if not isinstance(self.parameters, Mapping) or not self.parameters:
            raise InvalidInputError("parameters must be a non-empty dict of name -> list of values.")
        names = list(self.parameters)
        values = []
        for name in names:
            options = self.parameters[name]
            if isinstance(options, str | bytes) or not isinstance(options, Sequence) or not options:
                raise InvalidInputError(
                    f"Parameter {name!r} needs a non-empty list of values, got {options!r}."
                )
            values.append(list(options))
        unknown = _fields(self.command_line) - set(names) - {"index"}
        if unknown:
            raise InvalidInputError(
                f"command_line uses {', '.join(sorted(unknown))}, which are not parameters "
                f"({', '.join(names)})."
            )
        tasks = []
        for index, combo in enumerate(itertools.product(*values)):
            params = dict(zip(names, combo, strict=True))
            params["index"] = index
            local = _format(self.id_template, params, "id_template") if self.id_template else f"{index:05d}"
            body = to_rest(dict(self.task or {}))
            body.update(
                {"id": _local_id(local), "commandLine": _format(self.command_line, params, "command_line")}
            )
            tasks.append(body)
        return tasks


class BlobPrefixTasks(_Factory):
    """One task per blob under ``prefix`` in ``container``; the blob is downloaded as a resource file.

    The command line may use ``{blob_name}`` (full name), ``{blob_basename}``, ``{file_path}`` (where
    the file lands, relative to the working directory) and ``{index}``. A read SAS for the container
    is minted at execute time (or ``identity_reference`` is used) and never stored.

    :param suffix: Only blobs whose name ends with this (e.g. ``.csv``).
    :param file_path: Where to put the blob on the node; a template of the same placeholders.
    """

    template_fields: Sequence[str] = (
        "container",
        "prefix",
        "command_line",
        "file_path",
        "suffix",
        "azblob_conn_id",
    )

    def __init__(
        self,
        container: str,
        command_line: str,
        *,
        prefix: str = "",
        suffix: str | None = None,
        file_path: str = "{blob_basename}",
        azblob_conn_id: str = "azblob_default",
        task: Mapping[str, Any] | None = None,
    ) -> None:
        self.container = container
        self.prefix = prefix
        self.command_line = command_line
        self.suffix = suffix
        self.file_path = file_path
        self.azblob_conn_id = azblob_conn_id
        self.task = task

    def _names(self, ctx: TaskBuildContext) -> list[str]:
        hook = ctx.blob_hook(self.azblob_conn_id)
        names = sorted(info.name for info in hook.list_blobs(self.container, self.prefix or ""))
        names = [n for n in names if not n.startswith(_MANIFEST_DIR) and not n.endswith("/")]
        if self.suffix:
            names = [n for n in names if n.endswith(self.suffix)]
        return names

    def build(self, ctx: TaskBuildContext) -> list[dict[str, Any]]:
        return blob_tasks(
            ctx,
            self.azblob_conn_id,
            self.container,
            self._names(ctx),
            command_line=self.command_line,
            file_path=self.file_path,
            task=self.task,
            where=f"container {self.container!r} under prefix {self.prefix!r}",
            prefix=self.prefix or "",
        )


class TasksFromUpload(BlobPrefixTasks):
    """One task per blob an upload operator reported: pass its XCom (``upload_task.output``).

    Uses the ``blobs`` list of the upload summary, or, when the upload wrote a manifest instead, lists
    the blobs under the summary's prefix.
    """

    template_fields: Sequence[str] = ("upload", "command_line", "file_path", "suffix", "azblob_conn_id")

    def __init__(
        self,
        upload: Mapping[str, Any] | Any,
        command_line: str,
        *,
        suffix: str | None = None,
        file_path: str = "{blob_basename}",
        azblob_conn_id: str = "azblob_default",
        task: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            container="",
            command_line=command_line,
            suffix=suffix,
            file_path=file_path,
            azblob_conn_id=azblob_conn_id,
            task=task,
        )
        self.upload = upload

    def build(self, ctx: TaskBuildContext) -> list[dict[str, Any]]:
        summary = self.upload
        if not isinstance(summary, Mapping) or not summary.get("container"):
            raise InvalidInputError(
                "upload must be the XCom of an upload operator (a dict with 'container', 'prefix' and "
                f"'blobs'); got {type(summary).__name__}."
            )
        self.container = str(summary["container"])
        self.prefix = str(summary.get("prefix") or "")
        blobs = summary.get("blobs")
        if blobs:
            base = str(summary.get("container_url") or "").rstrip("/") + "/"
            names = []
            for item in blobs:
                url = str(item.get("url") if isinstance(item, Mapping) else item).split("?", 1)[0]
                names.append(
                    url[len(base) :] if base != "/" and url.startswith(base) else url.rsplit("/", 1)[-1]
                )
            from urllib.parse import unquote

            names = sorted(unquote(n) for n in names)
            if self.suffix:
                names = [n for n in names if n.endswith(self.suffix)]
        else:
            names = self._names(ctx)
        return blob_tasks(
            ctx,
            self.azblob_conn_id,
            self.container,
            names,
            command_line=self.command_line,
            file_path=self.file_path,
            task=self.task,
            where=f"the upload to container {self.container!r} (prefix {self.prefix!r})",
            prefix=self.prefix,
        )


def blob_tasks(
    ctx: TaskBuildContext,
    conn_id: str,
    container: str,
    names: Sequence[str],
    *,
    command_line: str,
    file_path: str,
    task: Mapping[str, Any] | None,
    where: str,
    prefix: str = "",
) -> list[dict[str, Any]]:
    """One task per blob name, each with that blob as its resource file.

    Task ids come from the part of the name below ``prefix``, so they stay readable when every input
    sits under a long per-run prefix, and stay the same on a retry.
    """
    if not names:
        raise InvalidInputError(f"No blobs found in {where}; there is nothing to process.")
    allowed = {"blob_name", "blob_basename", "file_path", "index"}
    unknown = (_fields(command_line) | _fields(file_path)) - allowed
    if unknown:
        raise InvalidInputError(
            f"Unknown placeholders {', '.join(sorted(unknown))}; use {', '.join(sorted(allowed))}."
        )
    tasks = []
    for index, name in enumerate(names):
        values: dict[str, Any] = {
            "blob_name": name,
            "blob_basename": posixpath.basename(name),
            "index": index,
        }
        values["file_path"] = _format(file_path, values, "file_path")
        body = to_rest(dict(task or {}))
        resource = ctx.blob_read_url(conn_id, container, name)
        resource["filePath"] = values["file_path"]
        body["resourceFiles"] = [*(body.get("resourceFiles") or []), resource]
        body["id"] = _local_id(name[len(prefix) :] if prefix and name.startswith(prefix) else name)
        body["commandLine"] = _format(command_line, values, "command_line")
        tasks.append(body)
    return tasks


__all__ = [
    "LOCAL_ID_MAX",
    "BlobPrefixTasks",
    "ParametricSweep",
    "TaskBuildContext",
    "TaskFactory",
    "TasksFromUpload",
    "blob_tasks",
]
