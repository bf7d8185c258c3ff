"""Each data-quality rule on both sides of its threshold, and the check descriptions derived from the thresholds."""

from __future__ import annotations

import pytest

from consumer_assets.assets import consumer_histories, raw_events
from consumer_assets.ml.monitoring import quality


@pytest.mark.parametrize(("rows", "passed"), [(49, False), (50, True), (100, True), (200, True), (201, False)])
def test_row_count_band_around_the_trailing_median(rows: int, passed: bool) -> None:
    outcome = quality.row_count(rows, [90, 100, 130])  # median 100
    assert outcome.passed is passed
    assert outcome.metadata["trailing_median"] == 100.0 and outcome.metadata["ratio"] == rows / 100
    assert ("within" if passed else "outside") in outcome.description


def test_row_count_without_history_passes_and_against_zero_fails() -> None:
    assert quality.row_count(10, []).passed
    assert not quality.row_count(10, [0, 0]).passed  # from nothing to something is not "normal"


@pytest.mark.parametrize(("quarantined", "passed"), [(0, True), (10, True), (11, False)])
def test_quarantined_share_limit(quarantined: int, passed: bool) -> None:
    outcome = quality.quarantined_share(1000 - quarantined, quarantined)  # 1000 landed; limit 1% = 10
    assert outcome.passed is passed and outcome.metadata["landed"] == 1000


def test_event_type_mix_distance() -> None:
    trailing = [{"view": 80, "order": 20}, {"view": 160, "order": 40}]  # pooled: 80% / 20%
    near = quality.event_type_mix({"view": 71, "order": 29}, trailing)  # moved by 0.09
    far = quality.event_type_mix({"view": 69, "order": 31}, trailing)  # moved by 0.11
    new_type = quality.event_type_mix({"view": 80, "order": 5, "teleport": 15}, trailing)
    assert near.passed and near.metadata["mix_distance"] == pytest.approx(0.09)
    assert not far.passed and "order" in far.description
    assert not new_type.passed and "teleport" in new_type.description
    assert quality.event_type_mix({"view": 1}, []).passed


def test_landed_files_fail_on_any_file_that_looks_like_data_left_out() -> None:
    assert quality.landed_files(3, {}).passed and quality.landed_files(3, {}).description == "all 3 data files ingested"
    left_out = {f"late-{k}.jsonl": "not listed in _SUCCESS" for k in range(7)}
    outcome = quality.landed_files(3, left_out)
    assert not outcome.passed and outcome.metadata == {"files_ingested": 3, "data_files_left_out": 7}
    assert outcome.description.startswith("7 files that look like data not ingested: late-0.jsonl (not listed in")
    assert outcome.description.endswith("late-4.jsonl (not listed in _SUCCESS) and 2 more")


@pytest.mark.parametrize(("p90", "passed"), [(100, True), (125, True), (75, True), (126, False), (74, False)])
def test_length_drift_per_quantile(p90: float, passed: bool) -> None:
    trailing = [{"length_p50": 40, "length_p90": 100}, {"length_p50": 40, "length_p90": 100}]
    outcome = quality.length_drift({"length_p50": 40, "length_p90": p90}, trailing)
    assert outcome.passed is passed
    if not passed:
        assert "length_p90" in outcome.description


def test_check_descriptions_follow_the_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert raw_events.RAW_EVENTS_CHECKS[raw_events.QUARANTINED_SHARE] == quality.describe_quarantined_share()
    assert "1%" in quality.describe_quarantined_share() and "0.5-2x" in quality.describe_row_count("rows")
    assert consumer_histories.HISTORIES_CHECKS[consumer_histories.LENGTH_DRIFT] == quality.describe_length_drift()
    monkeypatch.setattr(quality, "MAX_QUARANTINE_SHARE", 0.05)
    monkeypatch.setattr(quality, "ROW_COUNT_BAND", (0.8, 1.25))
    monkeypatch.setattr(quality, "MAX_LENGTH_DRIFT", 0.1)
    assert "5%" in quality.describe_quarantined_share()
    assert "0.8-1.25x" in quality.describe_row_count("rows") and "10%" in quality.describe_length_drift()
