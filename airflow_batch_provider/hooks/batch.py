"""Hook for the Azure Batch data plane: pools, jobs, tasks and their files, sync and async."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import AsyncHTTPPolicy, AsyncRetryPolicy, HTTPPolicy, RetryPolicy

from airflow_batch_provider.batch.monitor.counts import TaskCounts
from airflow_batch_provider.batch.monitor.polling import PollPolicy, poll_until
from airflow_batch_provider.batch.pool_spec import fix_pool_keys
from airflow_batch_provider.batch.rest import to_rest
from airflow_batch_provider.batch.service_errors import error_code, error_message, status_code
from airflow_batch_provider.config import OPTIONS, USER_AGENT, conf_flag, conf_number
from airflow_batch_provider.exceptions import (
    AzureAuthenticationError,
    BatchProviderError,
    InvalidInputError,
)
from airflow_batch_provider.hooks import _sdk_compat as compat
from airflow_batch_provider.hooks.base import AZBATCH_DEFAULT_CONN_ID, AzureBaseHook
from airflow_batch_provider.hooks.credentials import AzureConnectionSettings

if TYPE_CHECKING:  # the Batch SDK is imported with the first client, not with the hook
    from azure.batch import BatchClient
    from azure.batch.aio import BatchClient as AsyncBatchClient

#: The longest a hook waits for a job to terminate or a resource to be deleted, in seconds.
WAIT_TIMEOUT = 3600.0
#: The service accepts at most 100 tasks per add-collection request.
MAX_TASKS_PER_REQUEST = 100

#: The hook's settings that fall back to ``[azure_batch_provider]`` options, with their defaults.
_DEFAULTS: dict[str, Any] = {
    key: OPTIONS[key].default
    for key in (
        "retry_total",
        "retry_backoff_factor",
        "retry_backoff_max",
        "add_tasks_concurrency",
        "add_tasks_attempts",
    )
}


def _wait_for(poller: Any, what: str, timeout: float = WAIT_TIMEOUT) -> None:
    """Wait for an SDK long-running operation, at most ``timeout`` seconds (its errors propagate)."""
    poller.result(timeout=timeout)
    if not poller.done():
        raise BatchProviderError(f"Gave up waiting for {what} after {timeout:.0f}s.")


def _quiet_http_logging() -> None:
    """azure-core logs every request and response at INFO; keep task logs readable unless asked.

    Set ``[azure_batch_provider] http_logging = True`` (or the logger's level) to see them again.
    """
    name = "azure.core.pipeline.policies.http_logging_policy"
    logger = logging.getLogger(name)
    if not conf_flag("http_logging") and logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def _setting(key: str, given: float | None) -> float:
    """A hook argument if given, else the ``[azure_batch_provider]`` option, else the default."""
    return given if given is not None else conf_number(key)


class _ThrottleAwareMixin:
    """Retry POST like the other methods on 429 and on a dropped connection.

    azure-core retries POST only on 500/503/504. A throttled request was not processed, so retrying
    it is safe. After a dropped connection the request may or may not have been processed, and every
    POST this hook sends is safe to repeat: creates carry their id (a repeat answers ``PoolExists``,
    ``JobExists`` or ``TaskExists``, which the hook treats as done) and job actions answer a repeat
    with a conflict the hook expects (``JobCompleted``, ``JobTerminating``...).
    """

    def _is_method_retryable(self, settings: dict[str, Any], request: Any, response: Any = None) -> bool:
        if response is None or getattr(response, "status_code", None) == 429:
            return True
        return super()._is_method_retryable(settings, request, response=response)  # type: ignore[misc]


class BatchRetryPolicy(_ThrottleAwareMixin, RetryPolicy):
    """azure-core's retry policy (exponential backoff, honours Retry-After) that also retries POST on 429
    and dropped connections."""


class AsyncBatchRetryPolicy(_ThrottleAwareMixin, AsyncRetryPolicy):
    """Async :class:`BatchRetryPolicy`."""


def _authentication_error(conn_id: str, error: HttpResponseError) -> AzureAuthenticationError | None:
    """A rejected credential (403 ``AuthenticationFailed``...), explained; ``None`` for other errors."""
    code = error_code(error) or ""
    if status_code(error) not in (401, 403) or code not in _AUTH_CODES:
        return None
    detail = error_message(error).split("\n", 1)[0].split(" (", 1)[0]
    return AzureAuthenticationError(
        f"Connection {conn_id!r}: Azure Batch rejected its credentials ({code}: {detail}). Check the account "
        "key in the password field (the Batch account's current primary or secondary key; login is the "
        "account name), or the Entra ID fields and the identity's role on the account."
    )


def _rejected_input(kind: str, resource_id: Any, error: HttpResponseError) -> InvalidInputError | None:
    """A 400 about the request's content, with the property and value the service named."""
    if status_code(error) != 400:
        return None
    values = {
        str(getattr(item, "code", "")): str(getattr(item, "message", ""))
        for item in (getattr(getattr(error, "error", None), "details", None) or [])
    }
    message = error_message(error).split(" (", 1)[0]
    name = values.get("PropertyName") or values.get("QueryParameterName")
    if name:
        reason = f" ({values['Reason']})" if values.get("Reason") else ""
        where = f"{name} = {values.get('PropertyValue', '')!r}{reason}"
        fix = f"Fix {name} in the {kind} specification (the operator argument or spec dict that sets it)."
    else:
        where, fix = "", f"Check the {kind} specification."
    return InvalidInputError(
        f"Azure Batch rejected {kind} {resource_id!r} ({error_code(error)}): {message}"
        + (f" The service names {where}." if where else "")
        + f" {fix}"
    )


_AUTH_CODES = frozenset(
    {
        "AuthenticationFailed",
        "InvalidAuthenticationInfo",
        "AuthorizationFailure",
        "InvalidAuthenticationToken",
    }
)


class _AuthErrorPolicy(HTTPPolicy):
    """Turn the service's "credentials rejected" answer into an error naming the connection."""

    def __init__(self, conn_id: str) -> None:
        super().__init__()
        self.conn_id = conn_id

    def send(self, request: Any) -> Any:
        try:
            return self.next.send(request)
        except HttpResponseError as err:
            translated = _authentication_error(self.conn_id, err)
            if translated is None:
                raise
            raise translated from err


class _AsyncAuthErrorPolicy(AsyncHTTPPolicy):
    """Async :class:`_AuthErrorPolicy`."""

    def __init__(self, conn_id: str) -> None:
        super().__init__()
        self.conn_id = conn_id

    async def send(self, request: Any) -> Any:
        try:
            return await self.next.send(request)
        except HttpResponseError as err:
            translated = _authentication_error(self.conn_id, err)
            if translated is None:
                raise
            raise translated from err


@dataclass
class AddTasksResult:
    """Outcome of adding a collection: new tasks, tasks that already existed, and per-task failures.

    :param added: Tasks the service created.
    :param already_existed: Tasks the service answered ``TaskExists`` for (added by an earlier try).
    :param failures: The tasks the service refused, with its error for each.
    :param requests: Add-collection requests sent.
    """

    added: int = 0
    already_existed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0

    def merge(self, other: AddTasksResult) -> None:
        self.added += other.added
        self.already_existed += other.already_existed
        self.failures.extend(other.failures)
        self.requests += other.requests


def _as_dict(model: Any) -> dict[str, Any]:
    if model is None:
        return {}
    if isinstance(model, Mapping):
        return dict(model)
    return model.as_dict()


def _task_body(task: Mapping[str, Any] | Any) -> dict[str, Any]:
    """A task in the REST shape; dicts already in that shape are used as they are (no model building)."""
    if isinstance(task, dict) and all("_" not in key for key in task):
        return task
    return to_rest(task)


def _read_tail(
    get_properties: Callable[[], Any], download: Callable[[str], Any], max_bytes: int
) -> str | None:
    """Read only the end of a node or task file: its size first, then one ranged download."""
    try:
        size = compat.content_length_of(get_properties())
        ocp_range = compat.tail_range(size, max_bytes)
        if ocp_range is None:
            return ""
        data = compat.join_bytes(download(ocp_range))
    except ResourceNotFoundError:
        return None
    return _decode_tail(data, size > max_bytes)


async def _aread_tail(
    get_properties: Callable[[], Awaitable[Any]], download: Callable[[str], Awaitable[Any]], max_bytes: int
) -> str | None:
    """Async :func:`_read_tail`."""
    try:
        size = compat.content_length_of(await get_properties())
        ocp_range = compat.tail_range(size, max_bytes)
        if ocp_range is None:
            return ""
        data = await compat.ajoin_bytes(await download(ocp_range))
    except ResourceNotFoundError:
        return None
    return _decode_tail(data, size > max_bytes)


def _new_range(size: int, start: int, max_bytes: int) -> str | None:
    """The ``ocp-range`` of at most ``max_bytes`` new bytes from ``start``; ``None`` when nothing is new."""
    if size <= start or max_bytes <= 0:
        return None
    return f"bytes={start}-{min(size, start + max_bytes) - 1}"


def _read_from(
    get_properties: Callable[[], Any], download: Callable[[str], Any], start: int, max_bytes: int
) -> bytes | None:
    """Up to ``max_bytes`` of a file from byte ``start`` (its size first, then one ranged download)."""
    try:
        ocp_range = _new_range(compat.content_length_of(get_properties()), start, max_bytes)
        return b"" if ocp_range is None else compat.join_bytes(download(ocp_range))
    except ResourceNotFoundError:
        return None


async def _aread_from(
    get_properties: Callable[[], Awaitable[Any]],
    download: Callable[[str], Awaitable[Any]],
    start: int,
    max_bytes: int,
) -> bytes | None:
    """Async :func:`_read_from`."""
    try:
        ocp_range = _new_range(compat.content_length_of(await get_properties()), start, max_bytes)
        return b"" if ocp_range is None else await compat.ajoin_bytes(await download(ocp_range))
    except ResourceNotFoundError:
        return None


def _decode_tail(data: bytes, truncated: bool) -> str:
    text = data.decode("utf-8", errors="replace")
    if truncated and "\n" in text:
        text = text.split("\n", 1)[1]  # drop the partial first line
    return text


def _batch_error_text(error: Mapping[str, Any] | None) -> str | None:
    """The message of a per-task error in the REST shape (its message is an object with ``value``)."""
    if not error:
        return None
    message = error.get("message")
    text = message.get("value") if isinstance(message, Mapping) else message
    text = str(text or "").split("\nRequestId:", 1)[0].strip()
    values = error.get("values") or []
    extra = "; ".join(f"{item.get('key', '')}={item.get('value', '')}" for item in values)
    return f"{text} ({extra})" if extra else text


class BatchHook(AzureBaseHook):
    """Talk to an Azure Batch account from an ``azbatch`` connection.

    One sync client (:attr:`client`) and one async client (:meth:`aget_client`, for triggers) per hook,
    with azure-core retries (``retry_total``, ``retry_backoff_factor``, ``retry_backoff_max``; defaults
    from the ``[azure_batch_provider]`` config section) and a user agent naming this provider.
    ``http_policies`` adds azure-core pipeline policies (``SansIOHTTPPolicy``/``HTTPPolicy``) to both
    clients, run on every HTTP attempt.

    :param azbatch_conn_id: The ``azbatch`` connection id.
    :param retry_total: Retries of a failed request (default from the configuration).
    :param retry_backoff_factor: Backoff factor between retries, in seconds (default from the configuration).
    :param retry_backoff_max: Longest backoff between retries, in seconds (default from the configuration).
    :param add_tasks_concurrency: Add-collection requests sent at once (default from the configuration).
    :param http_policies: Extra azure-core pipeline policies for both clients.
    """

    conn_type = "azbatch"
    conn_name_attr: ClassVar[str] = "azbatch_conn_id"
    default_conn_name: ClassVar[str] = AZBATCH_DEFAULT_CONN_ID
    hook_name = "Azure Batch (batch provider)"
    service = "batch"

    def __init__(
        self,
        azbatch_conn_id: str | None = None,
        *,
        retry_total: int | None = None,
        retry_backoff_factor: float | None = None,
        retry_backoff_max: float | None = None,
        add_tasks_concurrency: int | None = None,
        http_policies: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=azbatch_conn_id or self.default_conn_name, **kwargs)
        #: Extra azure-core policies for both clients, run on every HTTP attempt (after the retry
        #: policy): to count, time or tag requests, as the benchmarks do.
        self.http_policies = list(http_policies or ())
        _quiet_http_logging()
        self.azbatch_conn_id = self.conn_id
        self.retry_total = int(_setting("retry_total", retry_total))
        self.retry_backoff_factor = float(_setting("retry_backoff_factor", retry_backoff_factor))
        self.retry_backoff_max = float(_setting("retry_backoff_max", retry_backoff_max))
        self.add_tasks_concurrency = int(_setting("add_tasks_concurrency", add_tasks_concurrency))
        self.add_tasks_attempts = max(1, int(_setting("add_tasks_attempts", None)))
        self._async_client: AsyncBatchClient | None = None
        self._async_credential: Any = None

    # -- clients ------------------------------------------------------------------------------------

    def _retry_kwargs(self) -> dict[str, Any]:
        # azure-core also caps each kind of failure at 3 by default; retry_total is the one knob here.
        return {
            "retry_total": self.retry_total,
            "retry_connect": self.retry_total,
            "retry_read": self.retry_total,
            "retry_status": self.retry_total,
            "retry_backoff_factor": self.retry_backoff_factor,
            "retry_backoff_max": self.retry_backoff_max,
        }

    def _client_kwargs(
        self, asynchronous: bool, settings: AzureConnectionSettings | None = None
    ) -> dict[str, Any]:
        policy_cls = AsyncBatchRetryPolicy if asynchronous else BatchRetryPolicy
        auth_policy = _AsyncAuthErrorPolicy(self.conn_id) if asynchronous else _AuthErrorPolicy(self.conn_id)
        options: dict[str, Any] = {
            "retry_policy": policy_cls(**self._retry_kwargs()),
            "user_agent": USER_AGENT,
            "per_call_policies": [auth_policy],
        }
        if self.http_policies:
            options["per_retry_policies"] = list(self.http_policies)
        # A CA to trust for the account URL: the local emulator's HTTPS endpoint, or a private cloud's.
        ca_bundle = settings.extras.get("ca_bundle") if settings is not None else None
        if ca_bundle:
            options["connection_verify"] = str(ca_bundle)
        return options

    def _check_transport(self, settings: AzureConnectionSettings) -> None:
        self._checked_mode(
            settings,
            settings.batch_endpoint,
            "the Batch account URL (host)",
            "Use the account's https:// URL, or the account key (password field) for a local emulator.",
        )

    @cached_property
    def client(self) -> BatchClient:
        """The synchronous ``azure.batch.BatchClient``, created once."""
        settings = self.settings
        self._check_transport(settings)
        from azure.batch import BatchClient

        options = self._client_kwargs(False, settings)
        return BatchClient(settings.batch_endpoint, settings.credential(), **options)

    def get_conn(self) -> BatchClient:
        return self.client

    async def aget_client(self) -> AsyncBatchClient:
        """The ``azure.batch.aio.BatchClient``, created once; close it with :meth:`aclose`."""
        if self._async_client is None:
            settings = await self.aget_settings()
            self._check_transport(settings)
            # Built in a worker thread: it imports aiohttp and builds a pipeline, which would stall
            # every other trigger of the triggerer's event loop.
            credential, client = await asyncio.to_thread(self._new_async_client, settings)
            self._async_credential, self._async_client = credential, client
            return client
        return self._async_client

    def _new_async_client(self, settings: AzureConnectionSettings) -> tuple[Any, AsyncBatchClient]:
        credential = settings.async_credential()
        from azure.batch.aio import BatchClient as AsyncBatchClient

        options = self._client_kwargs(True, settings)
        return credential, AsyncBatchClient(settings.batch_endpoint, credential, **options)

    async def aclose(self) -> None:
        """Close the async client and its credential."""
        client, credential = self._async_client, self._async_credential
        self._async_client = self._async_credential = None
        if client is not None:
            await client.close()
        close = getattr(credential, "close", None)
        if close is not None:
            result = close()
            if hasattr(result, "__await__"):
                await result

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    def test_connection(self) -> tuple[bool, str]:
        try:
            next(iter(self.client.list_pools(max_results=1, select=["id"])), None)
        except Exception as err:
            return False, f"{type(err).__name__}: {error_message(err)}"
        return True, "Connection to the Batch account works."

    # -- pools --------------------------------------------------------------------------------------

    def pool_exists(self, pool_id: str) -> bool:
        return compat.pool_exists(self.client, pool_id)

    def get_pool(self, pool_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        """The pool in the REST shape, or ``None`` when it does not exist."""
        try:
            return _as_dict(self.client.get_pool(pool_id, select=select))
        except ResourceNotFoundError:
            return None

    def create_pool(self, spec: Mapping[str, Any] | Any) -> bool:
        """Create a pool; ``False`` when a pool with that id already existed before this call."""
        body = fix_pool_keys(to_rest(spec))
        return self._create_once(
            "pool",
            body.get("id"),
            "PoolExists",
            self.client.create_pool,
            compat.model("BatchPoolCreateOptions")(body),
        )

    def _create_once(self, kind: str, resource_id: Any, exists_code: str, create: Any, options: Any) -> bool:
        """Send a create (retried by the pipeline); ``False`` when the resource was there before.

        When an attempt's answer was lost (connection dropped, 5xx after the commit) the retry gets
        ``<Kind>Exists`` for what that very attempt created: that counts as created by this call.
        """
        attempts = 0

        def count_attempts(response: Any) -> None:
            # Called for each answer; the retry policy numbers the attempts in the shared context.
            nonlocal attempts
            attempts = int(response.context.get("retry_count") or 0) + 1

        try:
            create(options, raw_response_hook=count_attempts)
        except HttpResponseError as err:
            if not isinstance(err, ResourceExistsError):
                rejected = _rejected_input(kind, resource_id, err)
                if rejected is None:
                    raise
                raise rejected from err
            if error_code(err) not in (None, exists_code):
                raise
            if attempts > 1:
                self.log.info(
                    "The %s %s exists after %d attempts: the answer to an earlier attempt of this create "
                    "was lost, so it is the one this call created.",
                    kind,
                    resource_id,
                    attempts,
                )
                return True
            return False
        return True

    def delete_pool(
        self, pool_id: str, *, wait: bool = False, poll_interval: float = 5, timeout: float = WAIT_TIMEOUT
    ) -> str:
        """Delete a pool: ``deleted``, ``not_found`` or ``being_deleted``; waits for it to vanish if asked
        (at most ``timeout`` seconds)."""
        return self._delete(
            lambda: self.client.begin_delete_pool(pool_id, polling_interval=poll_interval),  # type: ignore[arg-type]
            "PoolBeingDeleted",
            lambda: self.get_pool(pool_id, select=["id"]),
            wait=wait,
            poll_interval=poll_interval,
            timeout=timeout,
        )

    def _delete(
        self,
        begin: Callable[[], Any],
        being_deleted_code: str,
        getter: Callable[[], Any],
        *,
        wait: bool,
        poll_interval: float,
        timeout: float,
    ) -> str:
        """Start a delete: ``deleted``, ``not_found`` or ``being_deleted``; wait for it to vanish if asked."""
        try:
            poller = begin()
        except ResourceNotFoundError:
            return "not_found"
        except ResourceExistsError as err:
            if error_code(err) != being_deleted_code:
                raise
            if wait:
                self._wait_gone(getter, poll_interval, timeout)
            return "being_deleted"
        if wait:
            _wait_for(poller, "the resource to be deleted", timeout)
        return "deleted"

    def _wait_gone(self, getter: Any, poll_interval: float, timeout: float = WAIT_TIMEOUT) -> None:
        result = poll_until(
            getter, lambda found: found is None, PollPolicy.within(timeout, poll_interval), logger=self.log
        ).raise_error()
        if result.outcome == "timeout":
            raise BatchProviderError(f"The resource was still being deleted after {timeout:.0f}s.")

    def list_nodes(
        self, pool_id: str, select: list[str] | None = None, filter: str | None = None
    ) -> list[dict[str, Any]]:
        try:
            return [_as_dict(n) for n in self.client.list_nodes(pool_id, select=select, filter=filter)]
        except ResourceNotFoundError:
            return []

    def reboot_node(self, pool_id: str, node_id: str, *, kind: str = "requeue") -> None:
        """Start rebooting a node: its start task runs again; ``kind`` says what happens to running tasks.

        Raises the SDK's errors: ``ResourceNotFoundError`` for a missing node, ``ResourceExistsError``
        (409) for a node that cannot be rebooted now (``NodeBeingRebooted``...).
        """
        compat.begin_reboot_node(self.client, pool_id, node_id, kind)

    def resize_pool(self, pool_id: str, target_dedicated_nodes: int, target_low_priority_nodes: int) -> None:
        """Start resizing a fixed-size pool to these node counts, without waiting for the nodes.

        Raises the SDK's errors: ``ResourceNotFoundError`` for a missing pool, ``ResourceExistsError``
        (409) for a pool that cannot be resized now (``PoolNotSteady``, ``AutoScalingEnabled``...).
        """
        compat.begin_resize_pool(self.client, pool_id, target_dedicated_nodes, target_low_priority_nodes)

    def read_node_file_tail(
        self, pool_id: str, node_id: str, path: str, *, max_bytes: int = 4096
    ) -> str | None:
        """The last ``max_bytes`` of a file on a node (``startup/stderr.txt``...), ``None`` when missing."""
        return _read_tail(
            lambda: self.client.get_node_file_properties(pool_id, node_id, path),
            lambda ocp_range: self.client.download_node_file(pool_id, node_id, path, ocp_range=ocp_range),
            max_bytes,
        )

    def list_supported_images(self, filter: str | None = None) -> list[dict[str, Any]]:
        return [_as_dict(image) for image in self.client.list_supported_images(filter=filter)]

    # -- jobs ---------------------------------------------------------------------------------------

    def get_job(self, job_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        try:
            return _as_dict(self.client.get_job(job_id, select=select))
        except ResourceNotFoundError:
            return None

    def create_job(self, spec: Mapping[str, Any] | Any) -> bool:
        """Create a job; ``False`` when a job with that id already existed before this call."""
        body = to_rest(spec)
        return self._create_once(
            "job",
            body.get("id"),
            "JobExists",
            self.client.create_job,
            compat.model("BatchJobCreateOptions")(body),
        )

    def terminate_job(
        self,
        job_id: str,
        reason: str | None = None,
        *,
        wait: bool = False,
        poll_interval: float = 5,
        timeout: float = WAIT_TIMEOUT,
    ) -> str:
        """Terminate a job: ``terminated``, ``not_found`` or ``already_completed``; with ``wait``, waits
        at most ``timeout`` seconds for it to end."""
        try:
            poller = compat.begin_terminate_job(self.client, job_id, reason, polling_interval=poll_interval)
        except ResourceNotFoundError:
            return "not_found"
        except ResourceExistsError as err:
            if error_code(err) in ("JobCompleted", "JobTerminating", "JobBeingTerminated"):
                return "already_completed"
            if error_code(err) == "JobBeingDeleted":
                return "not_found"
            raise
        if wait:
            _wait_for(poller, f"job {job_id!r} to terminate", timeout)
        return "terminated"

    def delete_job(
        self, job_id: str, *, wait: bool = False, poll_interval: float = 5, timeout: float = WAIT_TIMEOUT
    ) -> str:
        """Delete a job and its tasks: ``deleted``, ``not_found`` or ``being_deleted``; with ``wait``,
        waits at most ``timeout`` seconds for it to vanish."""
        return self._delete(
            lambda: self.client.begin_delete_job(job_id, polling_interval=poll_interval),  # type: ignore[arg-type]
            "JobBeingDeleted",
            lambda: self.get_job(job_id, select=["id"]),
            wait=wait,
            poll_interval=poll_interval,
            timeout=timeout,
        )

    def get_task_counts(self, job_id: str) -> TaskCounts:
        return compat.task_counts_of(self.client.get_job_task_counts(job_id))

    # -- tasks --------------------------------------------------------------------------------------

    def list_tasks(
        self,
        job_id: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Tasks of a job in the REST shape; ``limit`` stops paging early."""
        pager = self.client.list_tasks(
            job_id, filter=filter, select=select, max_results=min(limit, 1000) if limit else None
        )
        items = itertools.islice(pager, limit) if limit else pager
        return [_as_dict(task) for task in items]

    def terminate_task(self, job_id: str, task_id: str) -> bool:
        try:
            self.client.terminate_task(job_id, task_id)
        except ResourceNotFoundError:
            return False
        except ResourceExistsError:  # already completed
            return False
        return True

    def read_task_file_tail(
        self, job_id: str, task_id: str, path: str, *, max_bytes: int = 4096
    ) -> str | None:
        """The last ``max_bytes`` of a task file (via ``ocp-range``); ``None`` when it is missing."""
        return _read_tail(
            lambda: self.client.get_task_file_properties(job_id, task_id, path),
            lambda ocp_range: self.client.download_task_file(job_id, task_id, path, ocp_range=ocp_range),
            max_bytes,
        )

    def read_task_file_from(
        self, job_id: str, task_id: str, path: str, start: int, *, max_bytes: int = 65536
    ) -> bytes | None:
        """Up to ``max_bytes`` of a task file from byte ``start`` (``ocp-range``); ``None`` when missing."""
        return _read_from(
            lambda: self.client.get_task_file_properties(job_id, task_id, path),
            lambda ocp_range: self.client.download_task_file(job_id, task_id, path, ocp_range=ocp_range),
            start,
            max_bytes,
        )

    def add_tasks(
        self,
        job_id: str,
        tasks: Sequence[Mapping[str, Any] | Any],
        *,
        max_concurrency: int | None = None,
        chunk_size: int = MAX_TASKS_PER_REQUEST,
    ) -> AddTasksResult:
        """Add tasks in chunks of 100 over parallel requests.

        A task whose id already exists counts as added before (so a retried Airflow task adds nothing
        twice); per-task server errors and lost responses are retried; a chunk the service finds too
        large is halved. Other per-task errors are returned in ``failures``.
        """
        bodies = [_task_body(task) for task in tasks]
        size = max(1, min(chunk_size, MAX_TASKS_PER_REQUEST))
        chunks = [bodies[i : i + size] for i in range(0, len(bodies), size)]
        workers = max(1, min(max_concurrency or self.add_tasks_concurrency, len(chunks) or 1))
        total = AddTasksResult()
        if not chunks:
            return total
        if workers == 1:
            for chunk in chunks:
                total.merge(self._add_chunk(job_id, chunk))
            return total
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch-add-tasks") as executor:
            for outcome in executor.map(lambda chunk: self._add_chunk(job_id, chunk), chunks):
                total.merge(outcome)
        return total

    def _add_chunk(self, job_id: str, chunk: list[dict[str, Any]]) -> AddTasksResult:
        outcome = AddTasksResult()
        pending = list(chunk)
        for attempt in range(self.add_tasks_attempts):
            outcome.requests += 1
            try:
                results = compat.create_task_collection(self.client, job_id, pending)
            except (ServiceRequestError, ServiceResponseError):
                # The request may or may not have been processed; ids make the retry safe.
                if attempt + 1 >= self.add_tasks_attempts:
                    raise
                time.sleep(min(self.retry_backoff_max, self.retry_backoff_factor * 2**attempt))
                continue
            except HttpResponseError as err:
                if error_code(err) == "RequestBodyTooLarge" and len(pending) > 1:
                    middle = len(pending) // 2
                    outcome.merge(self._add_chunk(job_id, pending[:middle]))
                    outcome.merge(self._add_chunk(job_id, pending[middle:]))
                    return outcome
                raise
            by_id = {task["id"]: task for task in pending}
            retry: list[Any] = []
            seen: set[str] = set()
            for result in results:
                task_id = str(result.get("taskId"))
                seen.add(task_id)
                status = str(result.get("status") or "").lower()
                error = result.get("error") or {}
                code = error.get("code")
                if status == "success":
                    outcome.added += 1
                elif code == "TaskExists":
                    outcome.already_existed += 1
                elif status == "servererror" and task_id in by_id:
                    retry.append(by_id[task_id])
                else:
                    outcome.failures.append(
                        {"id": task_id, "code": code, "message": _batch_error_text(error)}
                    )
            retry.extend(task for task_id, task in by_id.items() if task_id not in seen)
            if not retry:
                return outcome
            pending = retry
            time.sleep(min(self.retry_backoff_max, self.retry_backoff_factor * 2**attempt))
        outcome.failures.extend(
            {"id": task["id"], "code": "ServerError", "message": "the service kept failing to add this task"}
            for task in pending
        )
        return outcome

    # -- async (triggers) ---------------------------------------------------------------------------

    async def aget_pool(self, pool_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        client = await self.aget_client()
        try:
            return _as_dict(await client.get_pool(pool_id, select=select))
        except ResourceNotFoundError:
            return None

    async def alist_nodes(self, pool_id: str, select: list[str] | None = None) -> list[dict[str, Any]]:
        client = await self.aget_client()
        try:
            return [_as_dict(node) async for node in client.list_nodes(pool_id, select=select)]
        except ResourceNotFoundError:
            return []

    async def areboot_node(self, pool_id: str, node_id: str, *, kind: str = "requeue") -> None:
        """Start rebooting a node (async :meth:`reboot_node`, without waiting for the node)."""
        client = await self.aget_client()
        await compat.abegin_reboot_node(client, pool_id, node_id, kind)

    async def aresize_pool(
        self, pool_id: str, target_dedicated_nodes: int, target_low_priority_nodes: int
    ) -> None:
        """Start resizing a pool (async :meth:`resize_pool`, without waiting for the nodes)."""
        client = await self.aget_client()
        await compat.abegin_resize_pool(client, pool_id, target_dedicated_nodes, target_low_priority_nodes)

    async def aread_node_file_tail(
        self, pool_id: str, node_id: str, path: str, *, max_bytes: int = 4096
    ) -> str | None:
        client = await self.aget_client()
        return await _aread_tail(
            lambda: client.get_node_file_properties(pool_id, node_id, path),
            lambda ocp_range: client.download_node_file(pool_id, node_id, path, ocp_range=ocp_range),
            max_bytes,
        )

    async def aget_job(self, job_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        client = await self.aget_client()
        try:
            return _as_dict(await client.get_job(job_id, select=select))
        except ResourceNotFoundError:
            return None

    async def aget_task_counts(self, job_id: str) -> TaskCounts:
        client = await self.aget_client()
        return compat.task_counts_of(await client.get_job_task_counts(job_id))

    async def alist_tasks(
        self,
        job_id: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        client = await self.aget_client()
        pager = client.list_tasks(
            job_id, filter=filter, select=select, max_results=min(limit, 1000) if limit else None
        )
        items: list[dict[str, Any]] = []
        async for task in pager:
            items.append(_as_dict(task))
            if limit and len(items) >= limit:
                break
        return items

    async def aread_task_file_tail(
        self, job_id: str, task_id: str, path: str, *, max_bytes: int = 4096
    ) -> str | None:
        client = await self.aget_client()
        return await _aread_tail(
            lambda: client.get_task_file_properties(job_id, task_id, path),
            lambda ocp_range: client.download_task_file(job_id, task_id, path, ocp_range=ocp_range),
            max_bytes,
        )

    async def aread_task_file_from(
        self, job_id: str, task_id: str, path: str, start: int, *, max_bytes: int = 65536
    ) -> bytes | None:
        client = await self.aget_client()
        return await _aread_from(
            lambda: client.get_task_file_properties(job_id, task_id, path),
            lambda ocp_range: client.download_task_file(job_id, task_id, path, ocp_range=ocp_range),
            start,
            max_bytes,
        )

    async def aterminate_job(self, job_id: str, reason: str | None = None) -> str:
        client = await self.aget_client()
        try:
            await compat.abegin_terminate_job(client, job_id, reason)
        except ResourceNotFoundError:
            return "not_found"
        except ResourceExistsError:
            return "already_completed"
        return "terminated"

    async def aterminate_task(self, job_id: str, task_id: str) -> bool:
        """Async :meth:`terminate_task`: ``False`` when the task is gone or already completed."""
        client = await self.aget_client()
        try:
            await client.terminate_task(job_id, task_id)
        except (ResourceNotFoundError, ResourceExistsError):
            return False
        return True
