"""Every command the README shows is run by a test (or, `make test`, by the CI script), and `make dev`
serves the UI on the port it is given with the code location named as `dg dev` names it."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import requests

from consumer_assets_tests.support.dagster_services import LOCATIONS, stop_group
from consumer_assets_tests.support.services import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]

# What each README command is, and the test under consumer_assets_tests/ that runs it (or what it runs
# instead, where the command cannot run here).
RUN_BY = {
    r"make run$": "test_cli.py::test_run_simulates_ingests_and_builds_histories",
    r"make test$": ".ci/run",
    r"make dev$": "test_readme.py::test_make_dev_serves_the_ui_on_the_port_it_is_given",
    r"\.venv/bin/consumer-assets run ": "test_cli.py::test_run_simulates_ingests_and_builds_histories",
    r"\.venv/bin/consumer-assets simulate ": (
        "simulation/test_simulator.py::test_cli_simulate_prints_one_summary_per_day"
    ),
    r"\.venv/bin/consumer-assets predictions ": "assets/test_predictions.py::test_scores_and_explains_a_day",
    # The S3 settings a shell exports, read by the resources against a real S3 server on loopback.
    r"export (CONSUMER_ASSETS_STORAGE|CONSUMER_ASSETS_LANDING|AWS_REGION|AWS_ENDPOINT_URL)=": (
        "resources/test_s3_settings.py::test_s3_settings_are_read_when_the_run_builds_the_resource_not_before"
    ),
    # A standalone Spark cluster started by spark-class as the README does (support/spark_cluster.py).
    r"(export CONSUMER_ASSETS_SPARK_MASTER=|SPARK_CLASS=|SPARK_LOCAL_IP=|CONSUMER_ASSETS_SPARK_MASTER=spark://)": (
        "assets/test_consumer_histories.py::test_standalone_cluster_gives_the_same_histories"
    ),
    # No Docker engine here: the Dockerfile is linted and its image's command run outside a container.
    r"docker (build|run) ": "deploy/test_image.py::test_image_command_serves_the_code_location_as_its_user",
    r"\.venv/bin/python bench/\w+\.py": "test_benches.py::test_benchmark_runs_at_a_tiny_size",
    # Started, asked for its health and a score with curl as written, against a served simulated shop.
    r"(\.venv/bin/consumer-assets serve|curl -s 127\.0\.0\.1:8000/|P=\$\(\.venv/bin/consumer-assets predictions)": (
        "serving/test_service.py::test_the_readme_starts_the_service_and_scores_with_curl"
    ),
}


def readme_commands() -> list[str]:
    """The commands of the README's bash blocks: continuation lines joined, comments left out."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("  #")[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def test_every_readme_command_is_run_by_a_test() -> None:
    commands = readme_commands()
    assert len(commands) > 20
    unmatched = [c for c in commands if not any(re.match(p, c) for p in RUN_BY)]
    assert not unmatched, f"README commands no test runs: {unmatched}"
    for where in set(RUN_BY.values()):
        path, _, test = where.partition("::")
        file = ROOT / path if path == ".ci/run" else ROOT / "consumer_assets_tests" / path
        assert file.is_file(), where
        assert not test or re.search(rf"^def {test}\(", file.read_text(), flags=re.MULTILINE), where
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_make_dev_serves_the_ui_on_the_port_it_is_given(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CONSUMER_ASSETS_DATA_DIR": str(tmp_path)}
    env.pop("DAGSTER_HOME", None)
    log = tmp_path / "make-dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "dev", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/graphql"

    def locations() -> list[dict] | None:
        assert process.poll() is None, f"make dev exited with {process.returncode}: {log.read_text()[-3000:]}"
        try:
            answer = requests.post(url, json={"query": LOCATIONS}, timeout=5)
        except requests.RequestException:
            return None
        entries = answer.json()["data"]["workspaceOrError"]["locationEntries"] if answer.ok else []
        return entries if entries and all(e["loadStatus"] == "LOADED" for e in entries) else None

    try:
        wait_until(lambda: locations() is not None, 240, f"make dev to serve the UI on port {port}")
        (entry,) = locations() or []
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert entry["name"] == project["tool"]["dg"]["project"]["code_location_name"] == "consumer_assets"
        # The instance is the one `make run` records its runs in: the data dir's dagster_home.
        assert (tmp_path / "dagster_home" / "dagster.yaml").is_file()
    finally:
        stop_group(process)
