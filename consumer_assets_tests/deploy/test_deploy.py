"""The example production instance (docs/deploy/): a config this Dagster accepts, made of classes
that exist with config valid for each, credentials from the environment, and a `gpu` pool limit
that holds back a second training; its workspace reaches the image's code server."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.ref import InstanceRef
from dagster._core.workspace.config_schema import process_workspace_config
from dagster._serdes import ConfigurableClassData

from consumer_assets.definitions import defs
from consumer_assets_tests.support.dockerfile import final_stage, option

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy"
# The services an instance on AWS talks to; everything else can run on this machine.
SERVICES = ("storage", "compute_logs", "run_launcher")


def env_names(node: Any) -> set[str]:
    """Every NAME in an {env: NAME} of a config."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(env_names(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(env_names(value) for value in node))
    return set()


def loaded_class_config(data: ConfigurableClassData) -> dict:
    """The class a ConfigurableClassData names, imported, and its config processed by that class's schema
    (what the instance does when it starts, short of connecting)."""
    klass = getattr(importlib.import_module(data.module_name), data.class_name)
    result = process_config(resolve_to_config_type(klass.config_type()), data.config_dict)
    assert result.success, (data.class_name, result.errors)
    return result.value


@pytest.fixture
def instance_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Dagster home holding the example dagster.yaml, with every variable it reads set."""
    text = (DEPLOY / "dagster.yaml").read_text()
    for name in env_names(yaml.safe_load(text)):
        monkeypatch.setenv(name, "6432" if name.endswith("_PORT") else f"from-env-{name.lower()}")
    (tmp_path / "dagster.yaml").write_text(text)
    return tmp_path


def test_production_instance_names_real_classes_with_valid_config(instance_dir: Path) -> None:
    ref = InstanceRef.from_dir(str(instance_dir))  # validates the file against the instance schema
    parts = {
        "storage": ref.storage_data,
        "compute_logs": ref.compute_logs_data,
        "run_launcher": ref.run_launcher_data,
        "run_coordinator": ref.run_coordinator_data,
    }
    assert {name: (data.module_name, data.class_name) for name, data in parts.items()} == {
        "storage": ("dagster_postgres", "DagsterPostgresStorage"),
        "compute_logs": ("dagster_aws.s3.compute_log_manager", "S3ComputeLogManager"),
        "run_launcher": ("dagster_aws.ecs", "EcsRunLauncher"),
        "run_coordinator": ("dagster._core.run_coordinator", "QueuedRunCoordinator"),
    }
    configs = {name: loaded_class_config(data) for name, data in parts.items()}
    # Runs, events and schedules all in Postgres, credentials from the environment.
    for data in (ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data):
        assert data.module_name == "dagster_postgres" and loaded_class_config(data) == configs["storage"]
    database = configs["storage"]["postgres_db"]
    assert database["password"] == "from-env-dagster_pg_password" and database["port"] == 6432
    assert configs["compute_logs"]["bucket"] == "from-env-dagster_compute_log_bucket"
    assert configs["run_launcher"]["run_task_kwargs"]["cluster"] == "from-env-dagster_ecs_cluster"
    assert ref.settings["telemetry"] == {"enabled": False}


def test_gpu_pool_lets_one_training_run_at_a_time(instance_dir: Path, tmp_path: Path) -> None:
    # default_limit is the gpu pool's limit only while gpu is the code location's one pool.
    pools = {assets_def.op.pool for assets_def in defs.resolve_asset_graph().assets_defs if assets_def.is_executable}
    assert pools - {None} == {"gpu"}

    # The example's settings on a local instance, its external services left out.
    config = yaml.safe_load((instance_dir / "dagster.yaml").read_text())
    local = tmp_path / "local"
    local.mkdir()
    (local / "dagster.yaml").write_text(yaml.safe_dump({k: v for k, v in config.items() if k not in SERVICES}))
    with dg.DagsterInstance.from_config(str(local)) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("gpu")
        assert storage.get_concurrency_info("gpu").slot_count == 1
        first = storage.claim_concurrency_slot("gpu", "run-a", "trained_lstm_model")
        second = storage.claim_concurrency_slot("gpu", "run-b", "trained_lstm_model")
        assert (first.is_claimed, second.is_claimed) == (True, False)
        storage.free_concurrency_slots_for_run("run-a")
        assert storage.claim_concurrency_slot("gpu", "run-b", "trained_lstm_model").is_claimed


def test_workspace_reaches_the_image_code_server() -> None:
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    result = process_workspace_config(workspace)
    assert result.success, result.errors
    (server,) = [entry["grpc_server"] for entry in workspace["load_from"]]
    stage = final_stage(ROOT / "Dockerfile", {})
    assert str(server["port"]) == option(stage.cmd, "-p")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert server["location_name"] == project["tool"]["dagster"]["code_location_name"]


def test_every_published_port_of_the_unauthenticated_code_server_is_on_loopback() -> None:
    """The gRPC server binds every interface of its container and has no authentication: each way the
    docs publish it keeps it on loopback, and the deployment guide says how to keep it private."""
    stage = final_stage(ROOT / "Dockerfile", {})
    port = option(stage.cmd, "-p")
    assert option(stage.cmd, "-h") == "0.0.0.0"
    texts = {path: path.read_text() for path in (ROOT / "README.md", DEPLOY / "README.md", ROOT / "Dockerfile")}
    published = {
        (path.name, flag, " serve" in line)
        for path, text in texts.items()
        for line in text.splitlines()
        for flag in re.findall(r"-p (\S+:\d+)\b", line)
    }
    assert published, "the docs show how to run the image"
    # The scoring service (consumer-assets serve, port 8000, no authentication either) likewise.
    expected = {False: f":{port}", True: ":8000"}
    assert all(flag.startswith("127.0.0.1:") and flag.endswith(expected[serve]) for _, flag, serve in published), (
        published
    )
    guide = texts[DEPLOY / "README.md"]
    assert "no authentication" in guide and "NetworkPolicy" in guide and "security group" in guide
