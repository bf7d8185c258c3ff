"""Resource settings resolve at run time from config, then the environment, then the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import ParquetIOManager


def test_spark_master_from_config_env_or_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSUMER_ASSETS_SPARK_MASTER", raising=False)
    default = SparkResource().resolved_config()
    assert default["spark.master"] == "local[*]" and default["spark.driver.bindAddress"] == "127.0.0.1"

    monkeypatch.setenv("CONSUMER_ASSETS_SPARK_MASTER", "spark://spark-master:7077")
    remote = SparkResource(spark_config={"spark.executor.memory": "4g"}).resolved_config()
    assert remote["spark.master"] == "spark://spark-master:7077"
    assert "spark.driver.bindAddress" not in remote  # a cluster's driver must be reachable by executors
    assert remote["spark.executor.memory"] == "4g" and remote["spark.sql.session.timeZone"] == "UTC"

    assert SparkResource(master="yarn").resolved_config()["spark.master"] == "yarn"  # config beats env


def test_spark_staging_needs_a_shared_uri_when_executors_read_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUMER_ASSETS_DATA_DIR", "/srv/ca")
    assert SparkResource().staging("run1") == "/srv/ca/staging/run1"
    assert SparkResource(staging_uri="s3://b/stage/").staging("run1") == "s3://b/stage/run1"
    with pytest.raises(ValueError, match="reads_storage needs a staging_uri"):
        SparkResource(reads_storage=True).staging("run1")


def test_storage_and_landing_roots(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CONSUMER_ASSETS_STORAGE", raising=False)
    monkeypatch.delenv("CONSUMER_ASSETS_LANDING", raising=False)
    monkeypatch.setenv("CONSUMER_ASSETS_DATA_DIR", str(tmp_path))
    assert ParquetIOManager().store().location.uri == (tmp_path / "storage").as_uri()
    assert LandingZone().resolved_uri() == (tmp_path / "landing").as_uri()
    monkeypatch.setenv("CONSUMER_ASSETS_STORAGE", "s3://bucket/prefix")
    assert ParquetIOManager().store().location.uri == "s3://bucket/prefix"
    assert ParquetIOManager(root="/elsewhere").store().location.uri == "file:///elsewhere"
