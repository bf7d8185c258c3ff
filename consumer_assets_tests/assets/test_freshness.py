"""predictions' freshness policy: what the UI shows when a day's predictions are missing or late.

Judged by the freshness daemon's own code against a real instance, at pinned times (Dagster's
`freeze_time`, which its freshness evaluation reads the clock through).
"""

from __future__ import annotations

import asyncio
import datetime as dt

import dagster as dg
import pytest
from dagster._core.definitions.freshness import CronFreshnessPolicy, FreshnessState
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time
from dagster._daemon.freshness import FreshnessDaemon

from consumer_assets.assets.predictions import DUE_HOUR, PREDICTIONS
from consumer_assets.definitions import defs


def at(when: str) -> dt.datetime:
    return dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC)


def test_predictions_are_due_by_six_utc_the_day_after() -> None:
    policy = defs.resolve_asset_graph().get(PREDICTIONS).freshness_policy
    assert isinstance(policy, CronFreshnessPolicy)  # the current API, not LegacyFreshnessPolicy
    assert (policy.deadline_cron, policy.lower_bound_delta, policy.timezone) == (
        "0 6 * * *",
        dt.timedelta(hours=6),  # made after the day ended: midnight to the deadline
        "UTC",
    )
    assert DUE_HOUR == 6
    others = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k != PREDICTIONS]
    assert all(defs.resolve_asset_graph().get(k).freshness_policy is None for k in others)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def materialized(instance: dg.DagsterInstance, day: str, when: str) -> None:
    with freeze_time(at(when)):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=PREDICTIONS, partition=day))


def shown(instance: dg.DagsterInstance, when: str) -> FreshnessState:
    """The freshness state the daemon records at `when`, which the UI shows on the asset."""
    node = defs.resolve_asset_graph().get(PREDICTIONS)
    with freeze_time(at(when)):
        asyncio.run(FreshnessDaemon()._evaluate_asset(LoadingContextForTest(instance), node))
    return instance.get_freshness_state_records([PREDICTIONS])[PREDICTIONS].freshness_state


def test_a_missing_day_turns_predictions_stale_at_six(instance: dg.DagsterInstance) -> None:
    assert shown(instance, "2026-03-02T07:00") == FreshnessState.UNKNOWN  # never materialized
    materialized(instance, "2026-03-01", "2026-03-02T01:30")  # day 03-01, scored after it ended
    assert shown(instance, "2026-03-02T07:00") == FreshnessState.PASS
    assert shown(instance, "2026-03-03T05:59") == FreshnessState.PASS  # 03-02 is not due yet
    assert shown(instance, "2026-03-03T06:01") == FreshnessState.FAIL  # 03-02 is missing
    materialized(instance, "2026-03-02", "2026-03-03T09:00")  # late, but there
    assert shown(instance, "2026-03-03T09:01") == FreshnessState.PASS


def test_a_late_day_does_not_stand_in_for_the_next(instance: dg.DagsterInstance) -> None:
    materialized(instance, "2026-03-01", "2026-03-02T07:30")  # after its deadline
    assert shown(instance, "2026-03-02T08:00") == FreshnessState.PASS
    # By 06:00 on 03-03 the predictions of 03-02 are due: the late run of 03-01 does not count.
    assert shown(instance, "2026-03-03T06:01") == FreshnessState.FAIL
