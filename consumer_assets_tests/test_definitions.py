"""The code location loads as `dagster dev` and the CLI load it."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from consumer_assets.definitions import defs
from consumer_assets.partitions import daily_partitions

ROOT = Path(__file__).resolve().parents[1]


def test_dagster_definitions_validate(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # workspace.yaml (dagster dev, the test deployment) names the code location as `dg dev` does
    # (pyproject.toml), so schedule and sensor state and run history carry over between them.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    name = project["tool"]["dg"]["project"]["code_location_name"]
    assert f"Validation successful for code location {name}." in done.stdout + done.stderr


def test_assets_share_the_daily_partitions() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw_events", "raw_events_quarantine"} <= keys
    for key in graph.get_all_asset_keys():
        assert graph.get(key).partitions_def == daily_partitions
    assert daily_partitions.get_first_partition_key() == "2026-01-01"
