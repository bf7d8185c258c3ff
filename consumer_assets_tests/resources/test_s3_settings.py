"""One S3 settings value per resource, resolved when a run builds it: tables, artifacts and the landing zone agree."""

from __future__ import annotations

import os

import boto3
import dagster as dg
import pyarrow as pa
import pytest

from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.s3 import S3Config
from consumer_assets.resources.storage import Storage
from consumer_assets.storage.s3 import S3Settings
from consumer_assets.storage.writes import write_dates
from consumer_assets_tests.support.factories import DAY, event, land, line
from consumer_assets_tests.support.services import free_port

SCHEMA = pa.schema([pa.field("id", pa.int64())])
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@dg.asset
def stored(storage: Storage) -> dg.MaterializeResult:
    """A table commit and an artifact publish through the one storage resource."""
    # Whatever the environment says once the run has built its resources is not read any more.
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    commit = write_dates(storage.tables(), "things", {"2026-01-01": pa.table({"id": [1, 2, 3]})}, schema=SCHEMA)
    version = storage.artifacts().put("model", "2026-01-01", {"config.json": b"{}"}, {})
    endpoint = storage.location().s3.endpoint_url if storage.location().s3 else None
    return dg.MaterializeResult(
        metadata={"table_version": commit.version, "artifact": version.number, "endpoint": endpoint}
    )


def keys(endpoint: str, s3_uri: str) -> list[str]:
    """Every object under the S3 URI, listed by a client of its own pointed at `endpoint`."""
    bucket, prefix = s3_uri.removeprefix("s3://").split("/", 1)
    client = boto3.client("s3", endpoint_url=endpoint)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"].removeprefix(prefix + "/") for o in listed)


def materialized_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (materialization,) = result.asset_materializations_for_node("stored")
    return {k: v.value for k, v in materialization.metadata.items()}


def assert_landed(endpoint: str, root: str) -> None:
    found = keys(endpoint, root)
    assert "things/_delta_log/00000000000000000001.json" in found  # created, then the commit
    assert any(k.startswith("things/date=2026-01-01/") and k.endswith(".parquet") for k in found)
    assert "model/date=2026-01-01/_versions/00001.json" in found


def test_tables_and_artifacts_reach_the_configured_endpoint_with_none_in_the_environment(
    s3_root: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    storage = Storage(root=s3_root, s3=S3Config(endpoint_url=s3_endpoint))
    assert storage.location().s3 == S3Settings(endpoint_url=s3_endpoint, region="us-east-1")

    result = dg.materialize([stored], resources={"storage": storage})
    assert result.success
    assert materialized_metadata(result) == {"table_version": 1, "artifact": 1, "endpoint": s3_endpoint}
    assert_landed(s3_endpoint, s3_root)
    # Read back through a new resource: the artifact's checksums and the table's rows.
    again = Storage(root=s3_root, s3=S3Config(endpoint_url=s3_endpoint))
    latest = again.artifacts().latest("model", "2026-01-01")
    assert latest is not None and again.artifacts().load(latest) == {"config.json": b"{}"}
    assert again.tables().read("things", ["2026-01-01"])["id"].to_pylist() == [1, 2, 3]


def test_s3_settings_are_read_when_the_run_builds_the_resource_not_before(
    s3_root: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resource is made (as the code location does at import) while the environment names
    # another endpoint; it is set right before the run, and changed again inside it.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    storage = Storage(root=s3_root)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)

    result = dg.materialize([stored], resources={"storage": storage})
    assert result.success
    assert materialized_metadata(result)["endpoint"] == s3_endpoint
    assert_landed(s3_endpoint, s3_root)


def test_config_beats_the_environment_and_credentials_are_never_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "http://s3:2", "AWS_DEFAULT_REGION": "eu-1"}
    assert S3Settings.from_environment(environ) == S3Settings("http://s3:2", "eu-1")
    assert S3Settings.from_environment(environ, endpoint_url="http://c:3", region="us-west-2") == S3Settings(
        "http://c:3", "us-west-2"
    )
    assert S3Settings.from_environment({}) == S3Settings(None, None)
    options = S3Settings("http://c:3", "us-west-2").delta_options()
    assert options["AWS_ENDPOINT_URL"] == "http://c:3" and options["AWS_ALLOW_HTTP"] == "true"
    assert not any("KEY" in name or "TOKEN" in name for name in options)
    assert "AWS_ALLOW_HTTP" not in S3Settings("https://c:3").delta_options()

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://d:4")
    config = S3Config()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://e:5")
    assert config.settings().endpoint_url == "http://e:5"  # read when asked, not when made


@pytest.mark.slow
def test_the_landing_zone_reads_s3_through_its_own_settings(
    s3_root: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = land(f"{s3_root}/landing", {"a.jsonl.gz": [line(event(n)) for n in range(3)]})
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    zone = LandingZone(uri=landing, s3=S3Config(endpoint_url=s3_endpoint), workers=1)
    assert zone.completed_at(DAY) is not None
    assert zone.ingest(DAY).events.num_rows == 3
