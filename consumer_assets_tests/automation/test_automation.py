"""Declarative Automation of the chain and the training schedule, through Dagster's own evaluation APIs."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from consumer_assets.automation.schedules import TRAINING_HOUR, training_schedule
from consumer_assets.definitions import defs

NOW = dt.datetime(2026, 6, 16, 2, 0, tzinfo=dt.UTC)  # the last daily partition is 06-15
LAST = dt.date(2026, 6, 15)


def days(first: dt.date, last: dt.date) -> list[str]:
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def materialized(instance: dg.DagsterInstance, asset: str, keys: list[str]) -> None:
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=key))


def requested(result: dg.EvaluateAutomationConditionsResult, asset: str) -> list[str]:
    return sorted(result.get_requested_partitions(dg.AssetKey(asset)))


def triggered(result: dg.EvaluateAutomationConditionsResult, asset: str) -> list[str]:
    """The partitions whose automation condition holds in this evaluation."""
    (top,) = [r for r in result.results if r.key == dg.AssetKey(asset)]
    return sorted(top.true_subset.expensively_compute_partition_keys())


def test_a_redelivered_day_recomputes_the_later_histories_in_day_order() -> None:
    # consumer_histories[D] continues the state of D-1: a re-delivered raw_events day makes every later
    # state stale, and the automation recomputes them one day after the other, each once the day before
    # it is done; predictions follow each day's histories.
    instance = dg.DagsterInstance.ephemeral()
    materialized(instance, "raw_events", days(dt.date(2026, 5, 1), LAST))
    materialized(instance, "consumer_histories", days(dt.date(2026, 6, 1), LAST))
    materialized(instance, "predictions", days(dt.date(2026, 6, 1), LAST))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=NOW)
    assert requested(result, "consumer_histories") == requested(result, "predictions") == []

    materialized(instance, "raw_events", ["2026-06-10"])  # the shop re-delivered 06-10
    order: list[list[str]] = []
    for _ in range(10):
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor, evaluation_time=NOW
        )
        histories, predictions = triggered(result, "consumer_histories"), triggered(result, "predictions")
        if not histories:
            break
        order.append(histories)
        # Exactly those days are requested (declare.self_dependent_daily_asset: not the day before too).
        run = requested(result, "consumer_histories")
        assert run == histories
        # predictions of a day follow its histories in the same evaluation, never before them (the day
        # before also comes again here: runless events do not come from a run that targeted both).
        before = order[-2] if len(order) > 1 else []
        assert set(histories) <= set(predictions) <= {*run, *before}
        assert requested(result, "trained_lstm_model") == []  # training is never part of the chain
        materialized(instance, "consumer_histories", histories)  # the requested run succeeds
        materialized(instance, "predictions", predictions)
    assert order == [[day] for day in days(dt.date(2026, 6, 10), LAST)]
    assert triggered(result, "predictions") == []


def test_the_first_histories_day_is_recomputed_without_a_day_before_it() -> None:
    # Histories start on 06-01 (built from their horizon): nothing before them holds the automation back.
    instance = dg.DagsterInstance.ephemeral()
    materialized(instance, "raw_events", days(dt.date(2026, 5, 1), LAST))
    materialized(instance, "consumer_histories", days(dt.date(2026, 6, 1), LAST))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=NOW)
    materialized(instance, "raw_events", ["2026-06-01"])
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor, evaluation_time=NOW)
    assert requested(result, "consumer_histories") == ["2026-06-01"]


def test_a_new_day_flows_through_and_quality_waits_for_its_week() -> None:
    instance = dg.DagsterInstance.ephemeral()
    before = dt.date(2026, 6, 13)
    materialized(instance, "raw_events", days(dt.date(2026, 5, 1), before))
    materialized(instance, "consumer_histories", days(dt.date(2026, 6, 1), before))
    materialized(instance, "predictions", days(dt.date(2026, 6, 1), before))
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=NOW)

    materialized(instance, "raw_events", ["2026-06-14"])  # the landing sensor's run of a new day
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor, evaluation_time=NOW)
    assert requested(second, "consumer_histories") == ["2026-06-14"]
    assert requested(second, "predictions") == ["2026-06-14"]  # with the model in force: no wait for model[D]
    # predictions[06-07] are judged by 06-08..06-14, complete now; 06-08's week also needs 06-15.
    assert requested(second, "prediction_quality") == ["2026-06-07"]
    assert requested(second, "trained_lstm_model") == []


def test_training_runs_on_its_own_schedule_for_the_last_finished_day() -> None:
    tick = dt.datetime(2026, 6, 16, TRAINING_HOUR, 0, tzinfo=dt.UTC)
    context = dg.build_schedule_context(scheduled_execution_time=tick)
    schedule = defs.resolve_schedule_def(training_schedule.name)
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-06-15"
    assert schedule.job_name == "training_job" and schedule.cron_schedule == f"0 {TRAINING_HOUR} * * *"
    job = defs.resolve_job_def("training_job")
    assert {n.name for n in job.graph.node_defs} == {"trained_lstm_model"}
    assert "trained_lstm_model" not in {n.name for n in defs.resolve_job_def("daily_job").graph.node_defs}
