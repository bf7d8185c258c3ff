"""The main job as a new user runs it: `consumer-assets run`, through every asset, into the data dir."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from consumer_assets.cli import main
from consumer_assets.storage.tables import TableStore


@pytest.mark.slow
def test_run_simulates_ingests_and_builds_histories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUMER_ASSETS_DATA_DIR", str(tmp_path))
    for name in ("CONSUMER_ASSETS_STORAGE", "CONSUMER_ASSETS_LANDING", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    args = ["run", "--start", "2026-06-01", "--days", "29", "--profiles", "400", "--seed", "3"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # One line per run (asset, days, duration, its key figure and checks) and where to look; what
    # Dagster, Spark and the libraries print goes to a log file.
    lines = result.output.splitlines()
    assert len(lines) <= 13, result.output
    assert lines[0].startswith("simulated 2026-06-01..2026-06-29 (29 days) of 400 profiles")
    raw = next(line for line in lines if line.startswith("raw_events "))
    assert "2026-06-01..2026-06-29  29 days" in raw and "quarantined" in raw
    assert re.search(r"checks \d+/116 passed", raw)
    histories = next(line for line in lines if line.startswith("consumer_histories "))
    assert "2026-06-28..2026-06-29   2 days" in histories and "profiles on the last day" in histories
    assert f"outputs: {(tmp_path / 'storage').as_uri()}" in result.output
    assert "DEBUG" not in result.output and "WARN" not in result.output
    (log,) = (tmp_path / "logs").iterdir()
    assert f"own output: {log}" in result.output
    assert "ASSET_MATERIALIZATION" in log.read_text()  # the event log as --verbose would print it

    store = TableStore.at(str(tmp_path / "storage"))
    assert len(store.dates("raw_events")) == 29
    assert store.dates("consumer_histories") == ["2026-06-28", "2026-06-29"]  # full 28-day windows only
    assert store.read("consumer_histories", ["2026-06-29"]).num_rows > 0
    assert (tmp_path / "landing" / "date=2026-06-01" / "_SUCCESS").exists()
    # The runs are in the project's one instance (what `make dev` shows), telemetry off.
    home = tmp_path / "dagster_home"
    assert "enabled: false" in (home / "dagster.yaml").read_text()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_runs()) == 2
    assert CliRunner().invoke(main, ["dagster-home"]).output.strip() == str(home)
