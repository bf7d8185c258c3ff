"""The day windows, and the proof that each asset's Dagster mapping gives it exactly the days its code reads."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pydantic
import pytest

from consumer_assets.assets.trained_lstm_model import TrainingConfig
from consumer_assets.definitions import defs
from consumer_assets.histories.schema import MS_PER_DAY, cutoff_ms, window_ms
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.training.labels import label_window_ms
from consumer_assets.partitions import FIRST_DAY, daily_partitions, partition_day, window_keys
from consumer_assets.windows import (
    CHAIN,
    ELIGIBILITY,
    ELIGIBILITY_DAYS,
    HORIZON_DAYS,
    MAX_TRAIN_DAYS,
    PREVIOUS_DAY,
    TRAILING,
    Window,
    horizon,
    label_days,
    training_cutoffs,
)

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)  # every day below and its following week are partitions
DAYS = [dt.date(2026, 2, 20), dt.date(2026, 3, 1), dt.date(2026, 3, 29), dt.date(2026, 5, 31)]
# Days whose histories window reaches before the first partition.
EARLY_DAYS = [dt.date(2026, 1, 1), dt.date(2026, 1, 9), dt.date(2026, 1, 28)]


def upstream_days(asset: str, parent: str, day: dt.date) -> list[dt.date]:
    """The partitions of `parent` that the definitions' mapping gives `asset`[day], oldest first."""
    graph = defs.resolve_asset_graph()
    mapping = graph.get_partition_mapping(dg.AssetKey(asset), dg.AssetKey(parent))
    subset = daily_partitions.empty_subset().with_partition_keys([day.isoformat()])
    result = mapping.get_upstream_mapped_partitions_result_for_partitions(
        subset, daily_partitions, daily_partitions, current_time=NOW
    )
    assert not result.required_but_nonexistent_subset.get_partition_keys()
    return sorted(partition_day(key) for key in result.partitions_subset.get_partition_keys())


def spanned_days(interval_ms: tuple[int, int]) -> list[dt.date]:
    """The whole days an epoch-ms interval [start, end) covers; it must start and end at midnight."""
    start, end = interval_ms
    assert start % MS_PER_DAY == 0 and end % MS_PER_DAY == 0
    epoch = dt.date(1970, 1, 1)
    return [epoch + dt.timedelta(days=n) for n in range(start // MS_PER_DAY, end // MS_PER_DAY)]


def test_a_window_is_its_days_and_its_offsets() -> None:
    day = dt.date(2026, 3, 1)
    window = Window(-2, 1)
    assert window.offsets == (-2, 1) and len(window) == 4
    assert window.days(day) == [dt.date(2026, 2, 27), dt.date(2026, 2, 28), day, dt.date(2026, 3, 2)]
    assert (window.first(day), window.last(day)) == (window.days(day)[0], window.days(day)[-1])
    assert Window.through(3).days(day) == [dt.date(2026, 2, 27), dt.date(2026, 2, 28), day]
    assert Window.before(2).days(day) == [dt.date(2026, 2, 27), dt.date(2026, 2, 28)]
    assert Window.before(0).days(day) == [] and len(Window.before(0)) == 0
    with pytest.raises(ValueError, match="start"):
        Window(1, -1)
    # `then`: every day some day of the outer window reaches through the inner one.
    outer, inner = Window(-3, -2), Window(1, 2)
    reached = {d for o in outer.days(day) for d in inner.days(o)}
    assert outer.then(inner).days(day) == sorted(reached)
    assert Window(-5, -3).hull(Window(-1, 0)) == Window(-5, 0)


def test_the_training_windows_lie_a_label_week_back_and_read_nothing_after_the_day() -> None:
    day = dt.date(2026, 3, 29)
    assert training_cutoffs(day, 7) == [day - dt.timedelta(days=k) for k in range(13, 6, -1)]
    assert label_days(day, 7) == [day - dt.timedelta(days=k) for k in range(12, -1, -1)]
    for train_days in range(1, MAX_TRAIN_DAYS + 1):
        cutoffs, labels = training_cutoffs(day, train_days), label_days(day, train_days)
        assert len(cutoffs) == train_days and cutoffs[-1] == day - dt.timedelta(days=7)
        # The labels are the union of the cut-offs' following weeks, ending with the day itself.
        weeks = {d for c in cutoffs for d in spanned_days(label_window_ms(c))}
        assert labels == sorted(weeks) and labels[-1] == day
    # The main job needs the eligibility window of the oldest cut-off through the day: 28 + 7 + 7 - 1 days.
    assert len(CHAIN) == 41 and CHAIN.end == 0


@pytest.mark.parametrize("day", DAYS + EARLY_DAYS)
def test_histories_continue_the_day_before_with_the_day_itself(day: dt.date) -> None:
    first = partition_day(FIRST_DAY)
    assert upstream_days("consumer_histories", "raw_events", day) == [day]
    # The self-dependency: the state of the day before, none before the first partition.
    previous = [d for d in PREVIOUS_DAY.days(day) if d >= first]
    assert upstream_days("consumer_histories", "consumer_histories", day) == previous
    assert previous == ([day - dt.timedelta(days=1)] if day > first else [])
    # A day built anew reads its horizon: the days windows.horizon gives, the last ending at the cut-off.
    for days in (ELIGIBILITY_DAYS, HORIZON_DAYS):
        assert spanned_days(window_ms(horizon(days), day)) == horizon(days).days(day)
        assert len(horizon(days).days(day)) == days and window_ms(horizon(days), day)[1] == cutoff_ms(day)
    assert spanned_days(window_ms(ELIGIBILITY, day)) == ELIGIBILITY.days(day)
    with pytest.raises(ValueError, match="outside"):
        horizon(ELIGIBILITY_DAYS - 1)


@pytest.mark.parametrize("day", DAYS)
def test_training_reads_the_partitions_of_its_cutoffs_and_their_labels(day: dt.date) -> None:
    histories = upstream_days("trained_lstm_model", "consumer_histories", day)
    events = upstream_days("trained_lstm_model", "raw_events", day)
    assert histories == training_cutoffs(day, LstmConfig().train_days)
    assert events == label_days(day, LstmConfig().train_days)
    # Every train_days a run's config may ask for reads within what the mappings give.
    for train_days in range(1, MAX_TRAIN_DAYS + 1):
        assert set(training_cutoffs(day, train_days)) <= set(histories)
        assert set(label_days(day, train_days)) <= set(events)


@pytest.mark.parametrize("day", DAYS)
def test_prediction_quality_reads_the_week_whose_orders_it_counts(day: dt.date) -> None:
    assert upstream_days("prediction_quality", "raw_events", day) == spanned_days(label_window_ms(day))


@pytest.mark.parametrize("day", DAYS)
def test_every_other_input_is_the_same_day(day: dt.date) -> None:
    windowed = {
        ("consumer_histories", "consumer_histories"),
        ("trained_lstm_model", "consumer_histories"),
        ("trained_lstm_model", "raw_events"),
        ("prediction_quality", "raw_events"),
    }
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        for parent in graph.get(key).parent_keys:
            edge = (key.to_user_string(), parent.to_user_string())
            if edge not in windowed:
                assert upstream_days(*edge, day) == [day], edge


def test_train_days_is_bounded_by_what_the_mappings_cover() -> None:
    assert TrainingConfig().train_days == LstmConfig().train_days <= MAX_TRAIN_DAYS
    assert TrainingConfig(train_days=MAX_TRAIN_DAYS).lstm().train_days == MAX_TRAIN_DAYS
    with pytest.raises(pydantic.ValidationError, match="less than or equal"):
        TrainingConfig(train_days=MAX_TRAIN_DAYS + 1)


def test_trailing_days_stop_at_the_first_partition() -> None:
    assert window_keys(TRAILING, "2026-03-10") == [f"2026-03-0{d}" for d in range(3, 10)]
    assert window_keys(TRAILING, "2026-01-03") == ["2026-01-01", "2026-01-02"]
    assert window_keys(TRAILING, FIRST_DAY) == []
