"""docs/deploy/dagster.yaml for real: its PostgreSQL storage, queued run coordinator and pools under
`dagster-webserver` and `dagster-daemon`, on a real PostgreSQL server on loopback.

Only what cannot run here is replaced: the ECS run launcher (runs are processes of this machine) and
the S3 compute logs (kept on local disk). Two trainings launched together in the `gpu` pool run one
after the other; meanwhile, as the daily chain and training share one instance in production, a range
backfill ingests raw_events and Dagster's automation sensor runs the chain after it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEventType
from dagster._core.storage.tags import AUTOMATION_CONDITION_TAG, BACKFILL_ID_TAG, PARTITION_NAME_TAG

from consumer_assets.automation.jobs import RANGE_END, RANGE_START
from consumer_assets.resources.storage import Storage
from consumer_assets.simulation import simulate_to_landing
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets_tests.support.dagster_services import DagsterServices, dagster_services
from consumer_assets_tests.support.model_shop import FAST, ONE_DAY, D, build_shop, train
from consumer_assets_tests.support.postgres import PostgresServer, postgres_server

pytestmark = pytest.mark.slow

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
SENSOR = "default_automation_condition_sensor"  # Dagster's sensor for every asset with an automation condition
REPOSITORY = "__repository__"  # the name Dagster gives the repository of a Definitions object
TRAINED = [D, D + ONE_DAY]  # build_shop holds the histories and raw_events both days train on
LANDED = [D + 2 * ONE_DAY, D + 3 * ONE_DAY]  # the days after the shop's raw_events, to ingest
# Whichever training the pool lets in second is compared with an approved model: tolerances it always
# meets, so that both are approved in either order (the gate itself is tested in ml/training/).
TRAINING = FAST.model_copy(update={"nll_tolerance": 1.0, "ece_tolerance": 1.0, "mean_gap_tolerance": 1.0})
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
CHAIN = ["raw_events", "consumer_histories", "predictions"]  # prediction_quality waits for a landed week

LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"
START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename ... on Sensor { sensorState { status } } ... on PythonError { message }
  }
}
"""
SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { status ticks(limit: 1) { status } } }
  }
}
"""
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""
LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message }
  }
}
"""


def production_instance(compute_logs: Path) -> str:
    """docs/deploy/dagster.yaml with what cannot run here replaced, as the text of a dagster.yaml."""
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    # The test server has no TLS: the one setting of the storage section changed (the docs require TLS).
    assert config["storage"]["postgres"]["postgres_db"]["params"] == {"sslmode": "require"}
    config["storage"]["postgres"]["postgres_db"]["params"]["sslmode"] = "disable"
    # ECS -> Dagster's default launcher (each run a process here); S3 -> local compute logs.
    assert config.pop("run_launcher")["class"] == "EcsRunLauncher"
    config["compute_logs"] = {
        "module": "dagster._core.storage.local_compute_log_manager",
        "class": "LocalComputeLogManager",
        "config": {"base_dir": str(compute_logs)},
    }
    # The queue polled every second rather than every 5 s (the coordinator and its limits unchanged).
    config["run_coordinator"]["config"] = {"dequeue_interval_seconds": 1}
    config["nux"] = {"enabled": False}
    return yaml.safe_dump(config)


@dataclass(frozen=True)
class Deployment:
    services: DagsterServices
    instance: dg.DagsterInstance  # the same instance, in this process: reads what is in PostgreSQL
    postgres: PostgresServer
    storage: Path
    location: str

    def sensor(self) -> dict[str, str]:
        return {"repositoryLocationName": self.location, "repositoryName": REPOSITORY, "sensorName": SENSOR}

    def wait(self, condition, timeout: float, what: str) -> None:
        """Poll `condition` every second; fail with the run states and the services' logs after `timeout`."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                runs = [(r.job_name, r.tags.get(PARTITION_NAME_TAG), r.status.value) for r in self.instance.get_runs()]
                pytest.fail(f"timed out after {timeout}s waiting for {what}; runs: {runs}\n{self.services.log_tails()}")
            time.sleep(1)

    def finished(self, run_id: str) -> dg.DagsterRun:
        self.wait(lambda: self.instance.get_run_by_id(run_id).status.value in FINISHED, 300, f"run {run_id}")
        return self.instance.get_run_by_id(run_id)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    work = tmp_path_factory.mktemp("production")
    storage, landing = work / "storage", work / "landing"
    build_shop(storage.as_uri())
    # A model approved before the services start (trained in this process): the chain scores with the
    # model in force then, whichever of the deployment's trainings have ended by that time.
    assert train(storage.as_uri(), D, TRAINING).success
    list(simulate_to_landing(landing.as_uri(), LANDED[0], len(LANDED), profiles=300, seed=7))
    env = {
        "CONSUMER_ASSETS_DATA_DIR": str(work / "data"),
        "CONSUMER_ASSETS_STORAGE": storage.as_uri(),
        "CONSUMER_ASSETS_LANDING": landing.as_uri(),
    }
    with postgres_server() as postgres, pytest.MonkeyPatch.context() as patch:
        # The instance reads its database settings from these, here and in the services.
        for name, value in postgres.env().items():
            patch.setenv(name, value)
        instance_yaml = production_instance(work / "compute_logs")
        with dagster_services(work, env, dagster_yaml=instance_yaml) as services:
            (location,) = [e["name"] for e in services.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]]
            with dg.DagsterInstance.from_config(str(services.home)) as instance:
                yield Deployment(services, instance, postgres, storage, location)


@pytest.fixture(scope="module")
def trainings(deployment: Deployment) -> dict[str, str]:
    """Both days' training_job runs, launched together through the webserver; partition -> run id."""
    config = {"ops": {"trained_lstm_model": {"config": TRAINING.model_dump(exclude_none=True)}}}
    launched = {}
    for day in TRAINED:
        params = {
            "selector": {"repositoryLocationName": deployment.location, "repositoryName": REPOSITORY,
                         "jobName": "training_job"},
            "runConfigData": config,
            "executionMetadata": {"tags": [{"key": PARTITION_NAME_TAG, "value": day.isoformat()}]},
        }  # fmt: skip
        answer = deployment.services.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
        assert answer["__typename"] == "LaunchRunSuccess", answer
        # Submitted to the queued run coordinator: the daemon launches it.
        assert answer["run"]["status"] == "QUEUED"
        launched[day.isoformat()] = answer["run"]["runId"]
    return launched


def step_times(instance: dg.DagsterInstance, run_id: str, step: str) -> tuple[float, float]:
    """When the step started and when it succeeded, from the run's event log."""
    events = instance.all_logs(run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS})
    times = {e.dagster_event.event_type: e.timestamp for e in events if e.step_key == step}
    return times[DagsterEventType.STEP_START], times[DagsterEventType.STEP_SUCCESS]


def test_the_instance_lives_in_postgres(deployment: Deployment) -> None:
    instance = deployment.instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
    # Dagster's tables, in the database the environment names, and no SQLite file in the home.
    public = deployment.postgres.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    tables = {name for (name,) in public}
    assert {"runs", "event_logs", "jobs", "job_ticks", "concurrency_limits"} <= tables
    assert not list(deployment.services.home.rglob("*.db"))


def test_range_backfill_then_the_automation_sensor_runs_the_chain(
    deployment: Deployment, trainings: dict[str, str]
) -> None:
    # The trainings (fixture) were launched first and run meanwhile: the chain does not wait for them.
    services, instance = deployment.services, deployment.instance
    selector = deployment.sensor()
    started = services.graphql(START_SENSOR, {"selector": selector})["startSensor"]
    assert started["__typename"] == "Sensor" and started["sensorState"]["status"] == "RUNNING", started

    def evaluated() -> bool:
        state = services.graphql(SENSOR_TICKS, {"selector": selector})["sensorOrError"]["sensorState"]
        return any(tick["status"] in ("SUCCESS", "SKIPPED") for tick in state["ticks"])

    # Its first evaluation sets its cursor: only what is materialized after it counts as updated.
    deployment.wait(evaluated, 120, f"the first tick of {SENSOR}")

    keys = [day.isoformat() for day in LANDED]
    params = {
        "partitionsByAssets": [
            {"assetKey": {"path": ["raw_events"]}, "partitions": {"range": {"start": keys[0], "end": keys[-1]}}}
        ],
        "title": "production instance: range backfill",
    }
    launched = services.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def latest(asset: str, key: str) -> dg.EventLogRecord | None:
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1
        ).records
        return found[0] if found else None

    deployment.wait(lambda: all(latest("predictions", key) for key in keys), 480, f"the automation to score {keys}")
    registry = ModelRegistry(Storage(root=deployment.storage.as_uri()).artifacts(), "trained_lstm_model")
    approved = {f"{r['partition']}/v{r['version']}": r["approved_at"] for r in registry.approvals.records()}
    for key in keys:
        runs = {asset: deployment.finished(latest(asset, key).run_id) for asset in CHAIN}
        assert {asset: run.status.value for asset, run in runs.items()} == dict.fromkeys(CHAIN, "SUCCESS"), key
        # raw_events from the test's range backfill, as one run; the rest requested by the sensor.
        assert runs["raw_events"].tags[BACKFILL_ID_TAG] == backfill_id
        assert runs["raw_events"].tags[RANGE_START] == keys[0] and runs["raw_events"].tags[RANGE_END] == keys[-1]
        for asset in CHAIN[1:]:
            assert runs[asset].tags.get(AUTOMATION_CONDITION_TAG) == "true", (asset, key, runs[asset].tags)
        # Scored with an approved model, approved while the scoring step ran at the latest (which one
        # depends on how far the trainings had come: the step looks it up after loading its inputs).
        meta = latest("predictions", key).asset_materialization.metadata
        label = meta["model_version"].value
        _, step_done = step_times(instance, runs["predictions"].run_id, "predictions")
        assert label in approved and dt.datetime.fromisoformat(approved[label]).timestamp() <= step_done, label
        assert meta["profiles"].value > 0

    # Every run of the module, as PostgreSQL's runs table has it, once all have ended: none failed.
    def all_ended() -> bool:
        return all(status in FINISHED for _, status in deployment.postgres.query("SELECT run_id, status FROM runs"))

    deployment.wait(all_ended, 300, "every run to end")
    ended = ("COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")
    deployment.wait(lambda: instance.get_backfill(backfill_id).status.value in ended, 120, f"backfill {backfill_id}")
    assert instance.get_backfill(backfill_id).status.value == "COMPLETED_SUCCESS"
    statuses = dict(deployment.postgres.query("SELECT run_id, status FROM runs"))
    assert set(trainings.values()) <= set(statuses)
    assert set(statuses.values()) == {"SUCCESS"}, statuses


def test_two_trainings_in_the_gpu_pool_run_one_after_the_other(
    deployment: Deployment, trainings: dict[str, str]
) -> None:
    instance = deployment.instance
    runs = {key: deployment.finished(run_id) for key, run_id in trainings.items()}
    assert {key: run.status.value for key, run in runs.items()} == dict.fromkeys(
        (day.isoformat() for day in TRAINED), "SUCCESS"
    )
    first, second = sorted(step_times(instance, run.run_id, "trained_lstm_model") for run in runs.values())
    assert first[1] <= second[0], f"the training steps overlapped: {first} and {second}"
    # The pool's one slot (docs/deploy's default_limit), as the instance recorded it in PostgreSQL.
    assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
    # Each approved its model: the second waited for the slot, not for a failure of the first.
    for key, run in runs.items():
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("trained_lstm_model"), asset_partitions=[key]), limit=1
        ).records
        assert record.run_id == run.run_id
        assert record.asset_materialization.metadata["approved"].value is True
