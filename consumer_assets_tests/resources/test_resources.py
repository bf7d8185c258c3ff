"""Resource settings resolve at run time from config, then the environment, then the defaults."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import Storage


def test_spark_master_from_config_env_or_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSUMER_ASSETS_SPARK_MASTER", raising=False)
    default = SparkResource().resolved_config()
    assert default["spark.master"] == "local[*]" and default["spark.driver.bindAddress"] == "127.0.0.1"

    monkeypatch.setenv("CONSUMER_ASSETS_SPARK_MASTER", "spark://spark-master:7077")
    remote = SparkResource(spark_config={"spark.executor.memory": "4g"}).resolved_config()
    assert remote["spark.master"] == "spark://spark-master:7077"
    assert "spark.driver.bindAddress" not in remote  # a cluster's driver must be reachable by executors
    assert "spark.pyspark.python" not in remote  # the cluster's own Python, not this machine's path
    assert remote["spark.executor.memory"] == "4g" and remote["spark.sql.session.timeZone"] == "UTC"

    assert SparkResource(master="yarn").resolved_config()["spark.master"] == "yarn"  # config beats env
    loopback = SparkResource(master="spark://127.0.0.1:7077")
    assert loopback.on_this_machine() and not loopback.in_process()
    assert loopback.resolved_config()["spark.driver.host"] == "127.0.0.1"
    assert loopback.resolved_config()["spark.pyspark.python"] == sys.executable


def test_storage_and_landing_roots(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CONSUMER_ASSETS_STORAGE", raising=False)
    monkeypatch.delenv("CONSUMER_ASSETS_LANDING", raising=False)
    monkeypatch.setenv("CONSUMER_ASSETS_DATA_DIR", str(tmp_path))
    assert Storage().tables().location.uri == (tmp_path / "storage").as_uri()
    assert LandingZone().resolved_uri() == (tmp_path / "landing").as_uri()
    monkeypatch.setenv("CONSUMER_ASSETS_STORAGE", "s3://bucket/prefix")
    assert Storage().tables().location.uri == "s3://bucket/prefix"
    assert Storage(root="/elsewhere").tables().location.uri == "file:///elsewhere"
