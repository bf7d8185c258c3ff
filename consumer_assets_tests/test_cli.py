"""The main job as a new user runs it: `make run` (`consumer-assets run`), through every asset, into the data dir."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from consumer_assets.cli import main
from consumer_assets.storage.tables import TableStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_run_simulates_ingests_and_builds_histories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUMER_ASSETS_DATA_DIR", str(tmp_path))
    for name in ("CONSUMER_ASSETS_STORAGE", "CONSUMER_ASSETS_LANDING", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    # Through make, as the README says (-s: without make's echo of the command).
    args = "--start 2026-06-01 --days 29 --profiles 400 --seed 3"
    done = subprocess.run(["make", "-s", "run", f"ARGS={args}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    # One line per run (asset, days, duration, its key figure and checks) and where to look; what
    # Dagster, Spark and the libraries print goes to a log file.
    lines = done.stdout.splitlines()
    assert len(lines) <= 13, done.stdout
    assert lines[0].startswith("simulated 2026-06-01..2026-06-29 (29 days) of 400 profiles")
    raw = next(line for line in lines if line.startswith("raw_events "))
    assert "2026-06-01..2026-06-29  29 days" in raw and "quarantined" in raw
    assert re.search(r"checks \d+/116 passed", raw)
    histories = next(line for line in lines if line.startswith("consumer_histories "))
    assert "2026-06-28..2026-06-29   2 days" in histories and "profiles on the last day" in histories
    assert f"outputs: {(tmp_path / 'storage').as_uri()}" in done.stdout
    assert "DEBUG" not in done.stdout + done.stderr and "WARN" not in done.stdout + done.stderr
    (log,) = (tmp_path / "logs").iterdir()
    assert f"own output: {log}" in done.stdout
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
