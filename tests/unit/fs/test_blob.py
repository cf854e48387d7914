"""``azblob://`` paths parse exactly like ``az://`` ones, through universal_pathlib's private rule table.

If a universal_pathlib release renames or reshapes that table, these tests fail first: then look for a
public API (fsspec/universal_pathlib#291) and update ``airflow_batch_provider.fs.blob._parse_like_az``.
"""

from __future__ import annotations

import pytest
from airflow.sdk import ObjectStoragePath

import airflow_batch_provider.fs.blob  # noqa: F401  (registers the protocol, as the entry point does)


@pytest.mark.parametrize(
    "path", ["cont/a/b.txt", "cont/", "cont/deep/er/", "cont/with space/x.json", "cont/a//b"]
)
def test_azblob_paths_parse_like_az_paths(path: str) -> None:
    ours = ObjectStoragePath(f"azblob://{path}", conn_id="azblob_default")
    azure = ObjectStoragePath(f"az://{path}", conn_id="azblob_default")
    assert (ours.anchor, ours.drive, ours.parts, ours.key) == (
        azure.anchor,
        azure.drive,
        azure.parts,
        azure.key,
    )
    assert (ours / "x" / "y.csv").key == (azure / "x" / "y.csv").key
    assert ours.parent.key == azure.parent.key
    assert ours.anchor == "cont/"  # the container is the anchor, never a folder


def test_upaths_private_rule_table_still_has_the_shape_we_extend() -> None:
    from upath._flavour import WrappedFileSystemFlavour

    config = WrappedFileSystemFlavour.protocol_config
    with_az = {name for name, rules in config.items() if isinstance(rules, set) and "az" in rules}
    assert with_az, "universal_pathlib no longer lists 'az' in protocol_config: see fs/blob.py"
    assert all("azblob" in config[name] for name in with_az)  # type: ignore[literal-required]
    flavour = WrappedFileSystemFlavour.from_protocol("azblob")
    assert flavour.netloc_is_anchor and flavour.supports_empty_parts
