"""Declarative Automation of the daily chain: what brings each asset up to date, and when.

raw_events[D] is requested by the landing sensor once day D has landed completely. After it:

- consumer_histories[D] once raw_events[D] or consumer_histories[D-1] was (re)materialized, so a
  re-delivered day re-runs its histories, then the next day's, and so on to the latest, in day
  order (a day without histories before it, the first one, is built from its horizon: the missing
  day before does not hold it back); a histories day built from its horizon whose older raw days
  change is brought up by the stale-histories sensor (automation/sensors.py);
- predictions[D] once histories[D] was updated (with the model in force on D: a new model alone
  does not re-score past days);
- prediction_quality[D] once predictions[D] and all of raw_events[D+1..D+7] exist, i.e. when its week
  has landed, and again if any of them changes.

Each waits for its dependencies to be present, not in progress, and without a failed blocking
check. The model trains on its own schedule (automation/schedules.py), never inside this chain.
"""

import dagster as dg

AC = dg.AutomationCondition


def after_upstream_updates(
    *, ignore: dg.AssetKey | None = None, missing_ok: dg.AssetKey | None = None
) -> dg.AutomationCondition:
    """Requested when a dependency was updated (any partition it maps to), or when the latest day is
    missing; once, until it is handled; only with every dependency present (but `missing_ok`),
    settled and unblocked."""
    deps_updated, deps_missing, deps_in_progress = (
        AC.any_deps_updated(),
        AC.any_deps_missing(),
        AC.any_deps_in_progress(),
    )
    if missing_ok is not None:
        deps_missing = deps_missing.ignore(dg.AssetSelection.assets(missing_ok))
    blocking_passed = AC.all_deps_blocking_checks_passed()
    if ignore is not None:
        ignored = dg.AssetSelection.assets(ignore)
        deps_updated, deps_missing = deps_updated.ignore(ignored), deps_missing.ignore(ignored)
        deps_in_progress, blocking_passed = deps_in_progress.ignore(ignored), blocking_passed.ignore(ignored)
    trigger = (deps_updated | (AC.in_latest_time_window() & AC.newly_missing())).since_last_handled()
    return (trigger & ~deps_missing & ~deps_in_progress & ~AC.in_progress() & blocking_passed).with_label(
        "after upstream updates"
    )
