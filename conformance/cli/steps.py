"""The ``az batch`` commands the conformance run drives, in order, each with the result it must give.

A step's arguments may name values of the run (``{pool}``, ``{node}``, ``{workdir}``...) and values
earlier steps saved. ``auth="env"`` steps authenticate with the ``AZURE_BATCH_*`` environment
variables instead of flags. ``until`` retries the command until its check passes (the service is
asynchronous: pools allocate, tasks run). A check raises ``AssertionError`` naming what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Context = dict[str, str]
Check = Callable[[Any, Context], None]

VM_SIZE = "standard_d2s_v3"
IMAGE = "canonical:0001-com-ubuntu-server-jammy:22_04-lts"
NODE_AGENT_SKU = "batch.node.ubuntu 22.04"
GREETING = "hello from the azure cli"


@dataclass(frozen=True)
class Step:
    name: str
    #: The ``az`` arguments, split like a shell would; ``{placeholders}`` are filled in per argument.
    command: str
    check: Check
    auth: str = "flags"
    #: Written to ``{workdir}/<step>.json`` and passed as ``{json_file}``.
    json_file: dict[str, Any] | list[dict[str, Any]] | None = None
    #: Seconds to keep retrying until the check passes (0: run once).
    until: float = 0.0
    #: Values for later steps, read from this step's output.
    save: Callable[[Any], Context] = field(default=lambda _output: {})
    #: A defect of the CLI itself that makes this command fail after the service answered: the step
    #: then checks the HTTP exchanges ``az --debug`` logged (a list of ``Exchange``) instead of output.
    cli_defect: str | None = None


def value_at(document: Any, path: str) -> Any:
    """``document["a"]["b"]`` for ``"a.b"``; ``None`` where the path ends early."""
    for key in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def fields(**expected: Any) -> Check:
    """The output has these values; keys are paths with ``__`` for ``.`` (``executionInfo__exitCode``)."""

    def check(output: Any, context: Context) -> None:
        for name, wanted in expected.items():
            path = name.replace("__", ".")
            wanted = wanted.format(**context) if isinstance(wanted, str) else wanted
            actual = value_at(output, path)
            assert actual == wanted, f"{path} is {actual!r}, expected {wanted!r}"

    return check


def ids(*, present: tuple[str, ...] = (), absent: tuple[str, ...] = ()) -> Check:
    """The output is a list whose items' ids include ``present`` and exclude ``absent``."""

    def check(output: Any, context: Context) -> None:
        assert isinstance(output, list), f"expected a list, got {type(output).__name__}"
        listed = {item.get("id") for item in output}
        for name in present:
            assert name.format(**context) in listed, f"{name.format(**context)} missing from {sorted(listed)}"
        for name in absent:
            assert name.format(**context) not in listed, f"{name.format(**context)} still listed"

    return check


def all_added(*task_ids: str) -> Check:
    """``task create`` of a list: one ``success`` result per task."""

    def check(output: Any, context: Context) -> None:
        assert isinstance(output, list), f"expected one result per task, got {output!r}"
        results = {item.get("taskId"): item.get("status") for item in output}
        wanted = {task_id.format(**context): "success" for task_id in task_ids}
        assert results == wanted, f"results {results}, expected {wanted}"

    return check


def nothing(output: Any, context: Context) -> None:
    """Commands that print nothing on success (creates, actions)."""
    assert output in (None, "", {}), f"unexpected output {output!r}"


def all_of(*checks: Check) -> Check:
    def check(output: Any, context: Context) -> None:
        for each in checks:
            each(output, context)

    return check


def ubuntu_image_listed(output: Any, context: Context) -> None:
    skus = {image.get("nodeAgentSkuId") for image in output}
    assert NODE_AGENT_SKU in skus, f"{NODE_AGENT_SKU!r} not among {sorted(skus)}"
    ubuntu = next(image for image in output if image.get("nodeAgentSkuId") == NODE_AGENT_SKU)
    assert ubuntu.get("osType") == "linux", f"osType is {ubuntu.get('osType')!r}"
    assert value_at(ubuntu, "imageReference.publisher"), "the image has no imageReference.publisher"


def node_counts_of(pool: str, dedicated_idle: int) -> Check:
    def check(output: Any, context: Context) -> None:
        pool_id = pool.format(**context)
        entry = next((item for item in output if item.get("poolId") == pool_id), None)
        assert entry is not None, f"no node counts for {pool_id}"
        idle = value_at(entry, "dedicated.idle")
        total = value_at(entry, "dedicated.total")
        assert (idle, total) == (dedicated_idle, dedicated_idle), f"dedicated idle/total {idle}/{total}"

    return check


def idle_nodes(count: int) -> Check:
    def check(output: Any, context: Context) -> None:
        states = [node.get("state") for node in output]
        assert states == ["idle"] * count, f"node states {states}, expected {count} idle"
        assert all(node.get("vmSize") == VM_SIZE for node in output), "a node has another vmSize"

    return check


def file_listed(name: str) -> Check:
    def check(output: Any, context: Context) -> None:
        names = {item.get("name") for item in output}
        assert name in names, f"{name} not among {sorted(names)}"
        entry = next(item for item in output if item.get("name") == name)
        assert value_at(entry, "properties.contentLength") == len(GREETING) + 1, (
            f"{name} contentLength {value_at(entry, 'properties.contentLength')}"
        )

    return check


def downloaded(path: str, text: str) -> Check:
    def check(output: Any, context: Context) -> None:
        content = Path(path.format(**context)).read_text()
        assert content == text, f"downloaded {content!r}, expected {text!r}"

    return check


def answered_ok(method: str) -> Check:
    """The CLI's ``method`` request got a 2xx answer from the emulator."""

    def check(exchanges: Any, context: Context) -> None:
        statuses = [exchange.status for exchange in exchanges if exchange.method == method]
        assert statuses, f"no {method} request was made"
        assert all(200 <= status < 300 for status in statuses), f"{method} answered {statuses}"

    return check


def autoscale_result(assignment: str) -> Check:
    """``pool autoscale evaluate`` reports the formula's assignments without applying them."""

    def check(output: Any, context: Context) -> None:
        results = str(value_at(output, "results") or "")
        assert assignment in results.split(";"), f"results {results!r} lack {assignment!r}"
        assert value_at(output, "error") is None, f"evaluation error {value_at(output, 'error')}"

    return check


def first_node(output: Any) -> Context:
    return {"node": output[0]["id"]} if output else {}


#: ``task file show`` prints an HTTP response object, which the CLI's output transformer cannot read
#: (azure-cli 2.91.0 with azure-batch 15.0.0b1), whatever the service answers.
FILE_SHOW_DEFECT = "'RestRequestsTransportResponse' object has no attribute 'items'"


def steps(context: Context) -> list[Step]:
    """The run, in order; ``context`` holds the run's ids and its working directory."""
    context.update(vm_size=VM_SIZE, image=IMAGE, sku=NODE_AGENT_SKU, shell=f"/bin/sh -c 'echo {GREETING}'")
    the_task = "--job-id {job} --task-id {task}"
    task_file = f"{the_task} --file-path stdout.txt"
    return [
        Step("pool supported-images list", "batch pool supported-images list", ubuntu_image_listed),
        Step(
            "pool create (flags)",
            "batch pool create --id {pool} --vm-size {vm_size} --target-dedicated-nodes 1 --image {image}"
            " --node-agent-sku-id '{sku}'",
            nothing,
        ),
        Step(
            "pool show",
            "batch pool show --pool-id {pool}",
            fields(
                id="{pool}",
                vmSize=VM_SIZE,
                targetDedicatedNodes=1,
                currentDedicatedNodes=1,
                allocationState="steady",
                virtualMachineConfiguration__nodeAgentSkuId=NODE_AGENT_SKU,
            ),
            until=60,
        ),
        Step(
            "pool create (--json-file)",
            "batch pool create --json-file {json_file}",
            nothing,
            auth="env",
            json_file={
                "id": "{json_pool}",
                "vmSize": VM_SIZE,
                "targetDedicatedNodes": 0,
                "taskSlotsPerNode": 2,
                "virtualMachineConfiguration": {
                    "imageReference": {
                        "publisher": "canonical",
                        "offer": "0001-com-ubuntu-server-jammy",
                        "sku": "22_04-lts",
                    },
                    "nodeAgentSKUId": NODE_AGENT_SKU,
                },
            },
        ),
        Step(
            "pool show (env variables)",
            "batch pool show --pool-id {json_pool}",
            fields(id="{json_pool}", vmSize=VM_SIZE, targetDedicatedNodes=0, taskSlotsPerNode=2),
            auth="env",
        ),
        Step("pool list", "batch pool list", ids(present=("{pool}", "{json_pool}")), auth="env"),
        Step("pool resize", "batch pool resize --pool-id {json_pool} --target-dedicated-nodes 2", nothing),
        Step(
            "pool show (after resize)",
            "batch pool show --pool-id {json_pool}",
            fields(targetDedicatedNodes=2, currentDedicatedNodes=2, allocationState="steady"),
            until=60,
        ),
        Step(
            "pool node-counts list",
            "batch pool node-counts list",
            node_counts_of("{json_pool}", 2),
            until=30,
        ),
        Step("pool set (metadata)", "batch pool set --pool-id {json_pool} --metadata owner=cli", nothing),
        Step(
            "pool show (metadata)",
            "batch pool show --pool-id {json_pool}",
            fields(metadata=[{"name": "owner", "value": "cli"}], targetDedicatedNodes=2),
        ),
        Step(
            "pool autoscale enable",
            "batch pool autoscale enable --pool-id {json_pool} --auto-scale-formula '$TargetDedicatedNodes=2'"
            " --auto-scale-evaluation-interval PT5M",
            nothing,
        ),
        Step(
            "pool show (autoscale)",
            "batch pool show --pool-id {json_pool}",
            fields(enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes=2", targetDedicatedNodes=2),
            until=30,
        ),
        Step(
            "pool autoscale evaluate",
            "batch pool autoscale evaluate --pool-id {json_pool}"
            " --auto-scale-formula '$TargetDedicatedNodes=3'",
            autoscale_result("$TargetDedicatedNodes=3"),
        ),
        Step("pool autoscale disable", "batch pool autoscale disable --pool-id {json_pool}", nothing),
        Step("node list", "batch node list --pool-id {pool}", idle_nodes(1), until=60, save=first_node),
        Step(
            "node show",
            "batch node show --pool-id {pool} --node-id {node}",
            fields(id="{node}", state="idle", vmSize=VM_SIZE, isDedicated=True),
            auth="env",
        ),
        Step("job create", "batch job create --id {job} --pool-id {pool}", nothing),
        Step(
            "job show",
            "batch job show --job-id {job}",
            fields(id="{job}", state="active", poolInfo__poolId="{pool}"),
        ),
        Step("job list", "batch job list", ids(present=("{job}",)), auth="env"),
        Step("job disable", "batch job disable --job-id {job} --disable-tasks requeue", nothing),
        Step("job show (disabled)", "batch job show --job-id {job}", fields(state="disabled"), until=30),
        Step("job enable", "batch job enable --job-id {job}", nothing),
        Step("job show (enabled)", "batch job show --job-id {job}", fields(state="active"), until=30),
        Step("job set (priority)", "batch job set --job-id {job} --priority 7", nothing),
        Step("job show (priority)", "batch job show --job-id {job}", fields(priority=7, state="active")),
        Step(
            "task create",
            "batch task create --job-id {job} --task-id {task} --command-line {shell}"
            " --max-task-retry-count 1 --max-wall-clock-time PT10M",
            fields(id="{task}"),
        ),
        Step(
            "task create (--json-file)",
            "batch task create --job-id {job} --json-file {json_file}",
            fields(id="{json_task}"),
            auth="env",
            json_file={
                "id": "{json_task}",
                "commandLine": "/bin/sh -c 'echo $GREETING'",
                "environmentSettings": [{"name": "GREETING", "value": GREETING}],
            },
        ),
        Step(
            "task create (--json-file, a list of tasks)",
            "batch task create --job-id {job} --json-file {json_file}",
            all_added("{listed_task}-1", "{listed_task}-2"),
            json_file=[
                {"id": "{listed_task}-1", "commandLine": "/bin/true"},
                {
                    "id": "{listed_task}-2",
                    "commandLine": "/bin/true",
                    "constraints": {"maxTaskRetryCount": 2},
                },
            ],
        ),
        Step(
            "task show",
            "batch task show --job-id {job} --task-id {task}",
            fields(
                id="{task}",
                state="completed",
                commandLine="{shell}",
                executionInfo__exitCode=0,
                executionInfo__result="success",
                nodeInfo__poolId="{pool}",
                constraints__maxTaskRetryCount=1,
                constraints__maxWallClockTime="PT10M",
            ),
            until=60,
        ),
        Step(
            "task show (--json-file task)",
            "batch task show --job-id {job} --task-id {json_task}",
            fields(state="completed", executionInfo__exitCode=0),
            until=60,
        ),
        Step(
            "task list",
            "batch task list --job-id {job}",
            ids(present=("{task}", "{json_task}", "{listed_task}-1", "{listed_task}-2")),
        ),
        Step(
            "job task-counts show",
            "batch job task-counts show --job-id {job}",
            fields(
                taskCounts__completed=4,
                taskCounts__succeeded=4,
                taskCounts__failed=0,
                taskCounts__active=0,
                taskCounts__running=0,
            ),
        ),
        Step("task file list", f"batch task file list {the_task}", file_listed("stdout.txt")),
        Step(
            "task file download",
            f"batch task file download {task_file} --destination {{workdir}}/stdout.txt",
            downloaded("{workdir}/stdout.txt", GREETING + "\n"),
        ),
        Step(
            "task file download (--json-file task)",
            "batch task file download --job-id {job} --task-id {json_task} --file-path stdout.txt"
            " --destination {workdir}/json-stdout.txt",
            downloaded("{workdir}/json-stdout.txt", GREETING + "\n"),
            auth="env",
        ),
        Step(
            "task file show",
            f"batch task file show {task_file}",
            answered_ok("HEAD"),
            cli_defect=FILE_SHOW_DEFECT,
        ),
        Step("job stop", "batch job stop --job-id {job} --terminate-reason cli-done", nothing),
        Step(
            "job show (stopped)",
            "batch job show --job-id {job}",
            fields(state="completed", executionInfo__terminateReason="cli-done"),
            until=30,
        ),
        Step("job delete", "batch job delete --job-id {job} --yes", nothing),
        Step("job list (after delete)", "batch job list", ids(absent=("{job}",)), until=30),
        Step(
            "job-schedule create",
            "batch job-schedule create --id {schedule} --pool-id {pool} --recurrence-interval PT5M"
            " --priority 5 --max-parallel-tasks 2",
            nothing,
        ),
        Step(
            "job-schedule show",
            "batch job-schedule show --job-schedule-id {schedule}",
            fields(
                id="{schedule}",
                state="active",
                schedule__recurrenceInterval="PT5M",
                jobSpecification__poolInfo__poolId="{pool}",
                jobSpecification__priority=5,
                jobSpecification__maxParallelTasks=2,
                executionInfo__recentJob__id="{schedule}:job-1",
            ),
            auth="env",
        ),
        Step("job-schedule list", "batch job-schedule list", ids(present=("{schedule}",))),
        Step("job-schedule disable", "batch job-schedule disable --job-schedule-id {schedule}", nothing),
        Step(
            "job-schedule show (disabled)",
            "batch job-schedule show --job-schedule-id {schedule}",
            fields(state="disabled"),
        ),
        Step("job-schedule enable", "batch job-schedule enable --job-schedule-id {schedule}", nothing),
        Step("job-schedule stop", "batch job-schedule stop --job-schedule-id {schedule}", nothing),
        Step(
            "job-schedule show (stopped)",
            "batch job-schedule show --job-schedule-id {schedule}",
            fields(state="completed"),
            until=30,
        ),
        Step("job-schedule delete", "batch job-schedule delete --job-schedule-id {schedule} --yes", nothing),
        Step(
            "job-schedule list (after delete)",
            "batch job-schedule list",
            ids(absent=("{schedule}",)),
            until=30,
        ),
        Step("pool delete", "batch pool delete --pool-id {pool} --yes", nothing),
        Step(
            "pool delete (env variables)",
            "batch pool delete --pool-id {json_pool} --yes",
            nothing,
            auth="env",
        ),
        Step("pool list (after delete)", "batch pool list", ids(absent=("{pool}", "{json_pool}")), until=60),
    ]
