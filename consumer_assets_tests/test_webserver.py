"""The deployment as its users drive it: `dagster-webserver` and `dagster-daemon` on loopback, one
instance, the code location of workspace.yaml. A range backfill through the GraphQL API, read back
with deltalake; each day's check results of the range runs in headless Chromium; one partition
materialized through the UI, with its checks.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from playwright.sync_api import Page, expect

from consumer_assets.definitions import defs
from consumer_assets.ml.monitoring.quality import MAX_QUARANTINE_SHARE
from consumer_assets.simulation import LandedDay, simulate_to_landing
from consumer_assets_tests.support.browser import Screenshots, chromium_page
from consumer_assets_tests.support.dagster_services import DagsterServices, dagster_services

# Both tests share one webserver and daemon: `make test` runs a module's tests on one worker (loadfile).
pytestmark = pytest.mark.slow

RAW_EVENTS = ["raw_events"]
DAYS, PROFILES = 3, 300
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status partitionNames error { message }
      runs { runId status tags { key value } }
    }
    ... on Error { message }
  }
}
"""
MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition runId timestamp metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}
"""
HISTORIES_MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition runId metadataEntries { label ... on TextMetadataEntry { text } }
      }
    }
  }
}
"""

CHECK_EXECUTIONS = """
query Executions($key: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition, limit: 1) {
    runId status partition evaluation { partition description }
  }
}
"""
CHECK_STATUS = {"SUCCEEDED": "Passed", "FAILED": "Failed"}  # the UI's words for a day's stored result
ANY_CHECK_STATUS = re.compile(r"^(Passed|Failed|Skipped|Missing|In progress|Execution failed)$")
DayResult = tuple[str, str, str]  # run id, "Passed"/"Failed", description


@dataclass(frozen=True)
class Deployment:
    services: DagsterServices
    storage: Path
    landed: dict[str, LandedDay]  # partition key -> what the simulator put in the landing zone


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    work = tmp_path_factory.mktemp("deployment")
    storage, landing = work / "storage", work / "landing"
    # Days that have ended (so they are partitions) and lie in the UI's default 90-day window.
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS + 1)
    days = simulate_to_landing(landing.as_uri(), start, DAYS, profiles=PROFILES, seed=11, corrupt=0.02)
    landed = {day.date.isoformat(): day for day in days}
    env = {
        "CONSUMER_ASSETS_DATA_DIR": str(work / "data"),
        "CONSUMER_ASSETS_STORAGE": storage.as_uri(),
        "CONSUMER_ASSETS_LANDING": landing.as_uri(),
    }
    with dagster_services(work, env) as services:
        yield Deployment(services, storage, landed)


def wait_for_backfill(services: DagsterServices, backfill_id: str, timeout: float) -> dict[str, Any]:
    """Poll the backfill until the daemon has finished it; fail with the services' logs after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        backfill = services.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if backfill["status"] in TERMINAL:
            return backfill
        if time.monotonic() > deadline:
            pytest.fail(f"backfill {backfill_id} not finished after {timeout}s: {backfill}\n{services.log_tails()}")
        time.sleep(1)


def rows_per_day(table: Path) -> Counter[str]:
    """Rows per `date` partition, read through the Delta log by deltalake, not by this project's code."""
    dates = DeltaTable(str(table)).to_pyarrow_table(columns=["date"]).column("date").to_pylist()
    return Counter(day.isoformat() for day in dates)


def test_range_backfill_through_graphql(deployment: Deployment) -> None:
    services, keys = deployment.services, sorted(deployment.landed)
    params = {
        "partitionsByAssets": [
            {"assetKey": {"path": RAW_EVENTS}, "partitions": {"range": {"start": keys[0], "end": keys[-1]}}}
        ],
        "title": "test range backfill",
    }
    launched = services.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    backfill = wait_for_backfill(services, launched["backfillId"], timeout=300)
    assert backfill["status"] == "COMPLETED_SUCCESS", f"{backfill}\n{services.log_tails()}"
    assert backfill["partitionNames"] == keys
    # raw_events' single-run backfill policy: the whole range in one run.
    [run] = backfill["runs"]
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert run["status"] == "SUCCESS"
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        keys[0],
        keys[-1],
    )

    # Every landed line is either kept or quarantined, day by day.
    kept = rows_per_day(deployment.storage / "raw_events")
    quarantined = rows_per_day(deployment.storage / "raw_events_quarantine")
    assert set(kept) == set(quarantined) == set(keys)
    for key, day in deployment.landed.items():
        assert quarantined[key] == sum(day.corruptions.values()), key
        assert kept[key] == day.records - quarantined[key], key
    assert sum(quarantined.values()) > 0  # the reconciliation covered real bad lines

    # What the UI reports for each day is what the table holds: rows and the version committed.
    version = DeltaTable(str(deployment.storage / "raw_events")).version()
    found = services.graphql(MATERIALIZATIONS, {"key": {"path": RAW_EVENTS}, "partitions": keys})
    latest: dict[str, dict[str, Any]] = {}  # the UI test may have materialized one of the days before
    for materialization in sorted(found["assetOrError"]["assetMaterializations"], key=lambda m: float(m["timestamp"])):
        latest[materialization["partition"]] = materialization
    assert sorted(latest) == keys
    for key, materialization in latest.items():
        meta = {e["label"]: e.get("intValue") for e in materialization["metadataEntries"]}
        assert materialization["runId"] == run["runId"], key
        assert meta["dagster/row_count"] == kept[key], key
        assert meta["table_version"] == version, key


def test_self_dependent_histories_backfill_in_one_run_in_day_order(deployment: Deployment) -> None:
    # consumer_histories[D] continues consumer_histories[D-1]: Dagster 1.13 backfills a self-dependent
    # asset with a single-run backfill policy as one run over the range (a run per day without one);
    # the run goes through the days in order, each continuing the one before.
    services, keys = deployment.services, sorted(deployment.landed)
    if not (deployment.storage / "raw_events").exists():  # this test may run alone
        test_range_backfill_through_graphql(deployment)
    params = {
        "partitionsByAssets": [
            {"assetKey": {"path": ["consumer_histories"]}, "partitions": {"range": {"start": keys[0], "end": keys[-1]}}}
        ],
        "title": "histories backfill",
    }
    launched = services.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = wait_for_backfill(services, launched["backfillId"], timeout=400)
    assert backfill["status"] == "COMPLETED_SUCCESS", f"{backfill}\n{services.log_tails()}"
    [run] = backfill["runs"]
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        keys[0],
        keys[-1],
    )
    found = services.graphql(HISTORIES_MATERIALIZATIONS, {"key": {"path": ["consumer_histories"]}, "partitions": keys})
    built = {
        m["partition"]: {e["label"]: e.get("text") for e in m["metadataEntries"]}["built_from"]
        for m in found["assetOrError"]["assetMaterializations"]
        if m["runId"] == run["runId"]
    }
    # The first day has no day before it; each later one continues the state of the day before.
    previous = [(dt.date.fromisoformat(k) - dt.timedelta(days=1)).isoformat() for k in keys]
    assert built == {keys[0]: "raw_events of the horizon"} | {
        k: f"state of {p}" for k, p in zip(keys[1:], previous[1:], strict=True)
    }
    assert sorted(rows_per_day(deployment.storage / "consumer_histories_state")) == keys


def test_range_runs_show_each_days_check_result(deployment: Deployment, tmp_path: Path) -> None:
    # Before the UI test's one-day run: here each day's latest check result is the range run's.
    services, url, keys = deployment.services, deployment.services.url, sorted(deployment.landed)
    if not (deployment.storage / "consumer_histories").exists():  # this test may run alone
        test_self_dependent_histories_backfill_in_one_run_in_day_order(deployment)
    checks = [
        (asset, spec.name)
        for asset in ("raw_events", "consumer_histories")
        for spec in defs.resolve_assets_def(asset).check_specs
        if spec.asset_key.path == [asset]
    ]
    # What the instance stored: per check, each day's latest execution, from the one run of its range.
    stored = {check: latest_check_results(services, *check, keys) for check in checks}
    for (asset, check), days in stored.items():
        assert len({run_id for run_id, _, _ in days.values()}) == 1, (asset, check, days)
    # The quarantined share against what the simulator landed, not against what the code computed.
    landed_share = {k: sum(d.corruptions.values()) / d.records for k, d in deployment.landed.items()}
    assert {k: status for k, (_, status, _) in stored[("raw_events", "quarantined_share")].items()} == {
        k: "Passed" if share <= MAX_QUARANTINE_SHARE else "Failed" for k, share in landed_share.items()
    }

    with chromium_page(tmp_path) as page:
        shots = Screenshots(page, tmp_path / "screenshots", "test_range_runs_show_each_days_check_result")
        with shots.on_failure():
            for (asset, check), days in stored.items():
                open_check_partitions(page, url, asset, check, days)
                for key, (run_id, status, description) in days.items():
                    see_day_check_result(page, key, run_id, status, description)
                shots.take(f"{asset}-{check}")


def latest_check_results(services: DagsterServices, asset: str, check: str, keys: list[str]) -> dict[str, DayResult]:
    """The day's latest stored execution of the check, for each day."""
    found = {}
    for key in keys:
        [execution] = services.graphql(CHECK_EXECUTIONS, {"key": {"path": [asset]}, "check": check, "partition": key})[
            "assetCheckExecutions"
        ]
        assert execution["partition"] == execution["evaluation"]["partition"] == key, execution
        found[key] = (execution["runId"], CHECK_STATUS[execution["status"]], execution["evaluation"]["description"])
    return found


def open_check_partitions(page: Page, url: str, asset: str, check: str, days: dict[str, DayResult]) -> None:
    """The check's own Partitions tab: a status per day, none of the range's days skipped."""
    page.goto(f"{url}/assets/{asset}?view=checks&checkDetail={check}")
    # The check's tabs are buttons; the asset's tabs above them (one also "Partitions") are links.
    page.locator("button[role=tab]", has_text="Partitions").click()
    statuses = Counter(status for _, status, _ in days.values())
    for status in ("Passed", "Failed"):
        expect(page.get_by_text(f"{status} ({statuses[status]})", exact=True)).to_be_visible()
    expect(page.get_by_text("Skipped (0)", exact=True)).to_be_visible()


def see_day_check_result(page: Page, key: str, run_id: str, status: str, description: str) -> None:
    """Select the day in the partition list: its pane shows the day's own result from the range run."""
    page.get_by_title(key, exact=True).first.click()
    # The day's pane: the innermost block holding both its "Latest execution" and its "Description".
    pane = (
        page.locator("div")
        .filter(has=page.get_by_text("Latest execution", exact=True))
        .filter(has=page.get_by_text("Description", exact=True))
        .last
    )
    expect(pane.get_by_title(key, exact=True)).to_be_visible()  # the pane's heading is the day
    expect(pane.get_by_text(ANY_CHECK_STATUS)).to_have_text(status)
    expect(pane.get_by_text(description, exact=True)).to_be_visible()
    expect(pane.get_by_role("link", name=run_id[:8], exact=True)).to_have_attribute(
        "href", re.compile(rf"^/runs/{run_id}\b")
    )
    row = pane.locator("tr").filter(has=page.locator("td", has_text=re.compile(r"^partition$")))
    expect(row.locator("td").nth(1)).to_have_text(key)


def test_ui_materializes_one_partition(deployment: Deployment, tmp_path: Path) -> None:
    url, key = deployment.services.url, sorted(deployment.landed)[0]
    assets = sorted(asset_key.path[-1] for asset_key in defs.resolve_all_asset_keys())
    checks = {spec.name: spec.description for spec in defs.resolve_assets_def("raw_events").check_specs}
    assert "raw_events" in assets and checks

    # Wide enough for the expanded graph to be drawn at full detail, where nodes show whole names.
    with chromium_page(tmp_path, width=2200, height=1240) as page:
        shots = Screenshots(page, tmp_path / "screenshots", "test_ui_materializes_one_partition")
        with shots.on_failure():
            see_every_asset_in_lineage(page, url, assets)
            shots.take("lineage")
            page.set_viewport_size({"width": 1600, "height": 1000})
            run_id = launch_one_partition(page, url, key, shots)
            see_run_succeed(page, key, len(checks), deployment.services)
            shots.take("run-success")
            for check, description in sorted(checks.items()):
                see_check_result(page, url, check, description, key, run_id)
                shots.take(f"check-{check}")


def see_every_asset_in_lineage(page: Page, url: str, assets: list[str]) -> None:
    page.goto(f"{url}/asset-groups")
    # The global lineage starts with each group collapsed: expand them from the graph's settings menu.
    settings = page.locator("#zoom-slider-container").get_by_role("button")
    settings.filter(has=page.get_by_role("img", name="settings", exact=True)).click()
    page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
    page.keyboard.press("Escape")
    # Asset nodes are the graph's foreignObjects that are not group boxes (a group can share a name).
    nodes = page.locator("foreignObject:not(.group)")
    for asset in assets:
        expect(nodes.get_by_text(asset, exact=True), f"{asset} in the lineage graph").to_be_visible()


def launch_one_partition(page: Page, url: str, key: str, shots: Screenshots) -> str:
    """Asset page -> Materialize -> one partition in the dialog -> launch; returns the run id."""
    page.goto(f"{url}/assets/raw_events")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Launch runs to materialize raw_events")).to_be_visible()
    partitions = dialog.get_by_placeholder("No matching partitions")
    partitions.fill(key)
    partitions.press("Enter")
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    shots.take("partition-dialog")
    dialog.get_by_role("button", name="Launch 1 run").click()
    # The toast that confirms the launch links to the run.
    expect(page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}$"))).to_be_visible()
    page.get_by_role("link", name="View", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def see_run_succeed(page: Page, key: str, n_checks: int, services: DagsterServices) -> None:
    expect(page.get_by_text(f"partition: {key}", exact=True)).to_be_visible()
    expect(page.get_by_text(f"{n_checks} checks", exact=True)).to_be_visible()
    # The run page follows the run live; its header shows the status once the run has ended.
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$"))
    expect(status).to_be_visible(timeout=240_000)
    assert status.inner_text() == "Success", services.log_tails()


def see_check_result(page: Page, url: str, check: str, description: str | None, key: str, run_id: str) -> None:
    """The check's latest execution comes from the run and evaluated the partition."""
    page.goto(f"{url}/assets/raw_events?view=checks&checkDetail={check}")
    expect(page.get_by_text(description or check, exact=True)).to_be_visible()  # the check's own page
    # Each field of "Latest execution" is a label followed by its value.
    result = page.get_by_text("Evaluation result", exact=True).locator("xpath=following-sibling::*[1]")
    expect(result).to_have_text(re.compile(r"^(Passed|Failed)$"))
    target = page.get_by_text("Target materialization", exact=True).locator("xpath=following-sibling::a[1]")
    expect(target).to_have_attribute("href", f"/runs/{run_id}")
    # The checks cover the run, not one partition (Dagster's "Partition" field is empty): the day is in the metadata.
    row = page.locator("tr").filter(has=page.locator("td", has_text=re.compile(r"^partition$")))
    expect(row.locator("td").nth(1)).to_have_text(key)
