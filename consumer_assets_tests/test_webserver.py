"""The UI's server: `dagster-webserver` on loopback serves the assets with their daily partitions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from consumer_assets.partitions import daily_partitions

from .conftest import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]

ASSETS = """
{ assetNodes { assetKey { path } isPartitioned partitionKeys groupName
    hasAssetChecks: assetChecksOrError { ... on AssetChecks { checks { name } } } } }
"""


@pytest.mark.slow
def test_webserver_serves_assets_partitions_and_checks(tmp_path: Path) -> None:
    # The server computes its partitions from its own clock: take ours on both sides of its answer,
    # so a run across UTC midnight still compares with a key set from the same instant.
    keys_before = daily_partitions.get_partition_keys()
    port = free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    log = (tmp_path / "webserver.log").open("wb")
    server = subprocess.Popen(
        [str(webserver), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=ROOT,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert server.poll() is None, (tmp_path / "webserver.log").read_text()
            try:
                return requests.get(f"{url}/server_info", timeout=2).ok
            except requests.RequestException:
                return False

        wait_until(ready, 120, "dagster-webserver")
        answer = requests.post(f"{url}/graphql", json={"query": ASSETS}, timeout=120).json()
        assert "errors" not in answer, answer
        nodes = {"/".join(n["assetKey"]["path"]): n for n in answer["data"]["assetNodes"]}
        assert {"raw_events", "raw_events_quarantine", "consumer_histories"} <= nodes.keys()
        keys_after = daily_partitions.get_partition_keys()
        for name in ("raw_events", "consumer_histories"):
            assert nodes[name]["isPartitioned"]
            assert nodes[name]["partitionKeys"] in (keys_before, keys_after)
        checks = {c["name"] for c in nodes["raw_events"]["hasAssetChecks"]["checks"]}
        assert checks == {"row_count_vs_trailing_days", "quarantined_share", "event_type_mix"}
        assert requests.get(url, timeout=30).ok  # the UI's page itself
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
