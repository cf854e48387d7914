"""The registry of resource kinds is the one place that says what an emulated account holds."""

from __future__ import annotations

from pathlib import Path

from airflow_batch_provider.emulator.models.account import BatchAccount, EmulatorSettings
from airflow_batch_provider.emulator.models.registry import RESOURCE_KINDS


def test_every_kind_is_a_typed_account_attribute_holding_its_backend(tmp_path: Path) -> None:
    account = BatchAccount(EmulatorSettings(state_dir=tmp_path))
    for kind in RESOURCE_KINDS:
        assert BatchAccount.__annotations__[kind.attribute] == kind.backend.__name__, kind.attribute
        backend = getattr(account, kind.attribute)
        assert type(backend) is kind.backend
        assert backend.account is account


def test_every_backend_attribute_of_the_account_is_registered() -> None:
    annotated = {name for name, hint in BatchAccount.__annotations__.items() if str(hint).endswith("Backend")}
    assert annotated == {kind.attribute for kind in RESOURCE_KINDS}
