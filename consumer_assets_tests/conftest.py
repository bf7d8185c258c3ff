"""Shared fixtures: a real S3-compatible server on loopback, and isolated storage/landing roots."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from consumer_assets_tests.support.services import S3_CREDENTIALS, free_port, s3_client, wait_until


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone S3 server, a separate process speaking HTTP on 127.0.0.1."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    endpoint = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if server.poll() is not None:
            raise RuntimeError(f"moto server exited with {server.returncode}: {log.read_text()}")
        try:
            return requests.get(f"{endpoint}/moto-api/", timeout=1).status_code < 500
        except requests.RequestException:
            return False

    wait_until(up, 60, "the moto S3 server")
    yield endpoint
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def s3_root(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the test server, with the standard AWS variables pointing at it."""
    for name, value in {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=bucket)
    return f"s3://{bucket}/consumer-assets"


@pytest.fixture
def local_root(tmp_path: Path) -> str:
    return (tmp_path / "storage").as_uri()


@pytest.fixture(params=["local", "s3"])
def storage_root(request: pytest.FixtureRequest) -> str:
    """Both storage flavours: a local folder and an S3 prefix on the loopback server."""
    return request.getfixturevalue("local_root" if request.param == "local" else "s3_root")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """raw_events in the bucketed layout, four buckets, except older days written with two: the layout
    grew without a rewrite (histories_helpers.write_layout)."""
    from consumer_assets_tests.support.histories import DAYS, D, edge_rows, random_rows, write_layout

    root = tmp_path_factory.mktemp("raw_events")
    return write_layout(
        edge_rows() + random_rows(3), root, {day: 2 if day < D - dt.timedelta(days=10) else 4 for day in DAYS}
    )


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for a module's tests (ml.model.device.torch_threads, restored afterwards)."""
    from consumer_assets.ml.model.device import torch_threads

    with torch_threads(1):
        yield
