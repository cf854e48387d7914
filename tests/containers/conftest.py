"""Container tests: an emulator with a real OCI engine and the offline test image.

Every test here is marked ``containers`` (run them alone with ``pytest -m containers``) and is
skipped, saying why, where no engine works or the test image cannot be made.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import UBUNTU, pool_options, unique, wait_for_idle_nodes
from tests.support.container_images import ImageUnavailable, LocalRegistry, engine, image_for_tests


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/containers/" in item.nodeid:
            item.add_marker(pytest.mark.containers)


@pytest.fixture(scope="session")
def container_engine() -> str:
    found = engine()
    if found is None:
        pytest.skip("no container engine works here (podman or docker): scripts/install-container-engine.sh")
    return found


@pytest.fixture(scope="session")
def image(container_engine: str) -> str:
    try:
        return image_for_tests(container_engine)
    except (ImageUnavailable, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", b"") or b""
        pytest.skip(f"the container test image cannot be made here: {err} {detail.decode(errors='replace')}")


@pytest.fixture(scope="session")
def registry(
    container_engine: str, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalRegistry]:
    """A registry on this machine, started for the tests (Debian's docker-registry)."""
    try:
        with LocalRegistry(tmp_path_factory.mktemp("registry"), container_engine) as started:
            yield started
    except ImageUnavailable as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def container_emulator(container_engine: str, image: str) -> Iterator[BatchEmulatorServer]:
    with BatchEmulatorServer(
        step_delay=0.005, dedicated_core_quota=1000, pool_quota=1000, container_engine=container_engine
    ) as server:
        yield server


@pytest.fixture(scope="session")
def client(container_emulator: BatchEmulatorServer) -> BatchClient:
    return BatchClient(
        container_emulator.endpoint,
        AzureNamedKeyCredential(container_emulator.account_name, container_emulator.account_key),
    )


def container_vm(*images: str) -> m.VirtualMachineConfiguration:
    """The test pools' VM configuration with a container configuration prefetching ``images``."""
    return m.VirtualMachineConfiguration(
        image_reference=UBUNTU.image_reference,
        node_agent_sku_id=UBUNTU.node_agent_sku_id,
        container_configuration=m.BatchContainerConfiguration(
            type="dockerCompatible", container_image_names=list(images)
        ),
    )


@pytest.fixture(scope="session")
def container_pool(client: BatchClient, image: str) -> str:
    """A container pool of one idle node with four slots that prefetched the test image."""
    pool_id = unique("containers")
    client.create_pool(
        pool_options(pool_id, virtual_machine_configuration=container_vm(image), task_slots_per_node=4)
    )
    wait_for_idle_nodes(client, pool_id, 1)
    return pool_id


@pytest.fixture
def container_job(client: BatchClient, container_pool: str) -> str:
    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=container_pool)))
    return job_id


def containers_named(engine_path: str, fragment: str) -> list[str]:
    """Names of the engine's containers (running or not) whose name contains ``fragment``."""
    listed = subprocess.run(
        [engine_path, "ps", "--all", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    )
    return [name for name in listed.stdout.split() if fragment in name]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly whether the container tests ran, and through which engine."""
    reports = [
        report
        for status in ("passed", "failed", "skipped", "error")
        for report in terminalreporter.stats.get(status, [])
        if "tests/containers/" in getattr(report, "nodeid", "") and report.when in ("call", "setup")
    ]
    if not reports:
        return
    ran = [report for report in reports if report.when == "call"]
    skipped = [report for report in reports if report.skipped]
    if ran:
        line = f"container tests: {len(ran)} ran through {engine() or 'an engine'}"
    else:
        reason = skipped[0].longrepr[-1] if skipped and isinstance(skipped[0].longrepr, tuple) else ""
        line = f"container tests: none ran ({len(skipped)} skipped: {reason})"
    terminalreporter.write_sep("-", line)
