"""Data-quality rules as plain functions; the assets' checks call them with today's and trailing figures.

The thresholds are deliberately loose: they flag a broken tracking release, a half-landed day or
a broken aggregation, not ordinary day-to-day variation (weekly seasonality moves volumes by tens
of percent).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumer_assets.windows import TRAILING_DAYS

ROW_COUNT_BAND = (0.5, 2.0)  # today's count over the trailing median
MAX_LENGTH_DRIFT = 0.25  # relative change of a sequence-length quantile
MAX_QUARANTINE_SHARE = 0.01
MAX_MIX_DISTANCE = 0.10  # total variation distance between event-type shares


def describe_row_count(what: str) -> str:
    low, high = ROW_COUNT_BAND
    return f"{what.capitalize()} within {low:g}-{high:g}x of the median of the {TRAILING_DAYS} trailing days."


def describe_quarantined_share() -> str:
    return f"At most {MAX_QUARANTINE_SHARE:.0%} of the landed records quarantined."


def describe_event_type_mix() -> str:
    return f"Event-type shares within {MAX_MIX_DISTANCE:g} (total variation distance) of the trailing days."


def describe_landed_files() -> str:
    return (
        "Every file of the landing day folder whose name looks like event data (JSON Lines or compressed, any case) "
        "was ingested: none left out by the marker or named unlike a data file."
    )


def describe_length_drift() -> str:
    return f"Sequence-length p50 and p90 within {MAX_LENGTH_DRIFT:.0%} of their trailing medians."


@dataclass(frozen=True)
class Outcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def row_count(rows: int, trailing: Sequence[int], what: str = "events") -> Outcome:
    """Today's count within ROW_COUNT_BAND of the median of the trailing days."""
    if not trailing:
        return Outcome(True, "no trailing days to compare with yet", {"rows": rows})
    median = statistics.median(trailing)
    ratio = rows / median if median else float("inf")
    low, high = ROW_COUNT_BAND
    passed = low <= ratio <= high
    verdict = "within" if passed else "outside"
    return Outcome(
        passed,
        f"{rows} {what} is {ratio:.2f}x the median of {len(trailing)} trailing days ({verdict} {low}-{high}x)",
        {"rows": rows, "trailing_median": float(median), "ratio": round(ratio, 4), "trailing_days": len(trailing)},
    )


def quarantined_share(kept: int, quarantined: int) -> Outcome:
    """At most MAX_QUARANTINE_SHARE of the landed records quarantined."""
    landed = kept + quarantined
    share = quarantined / landed if landed else 0.0
    passed = share <= MAX_QUARANTINE_SHARE
    return Outcome(
        passed,
        f"{quarantined} of {landed} landed records quarantined ({share:.3%}; limit {MAX_QUARANTINE_SHARE:.1%})",
        {"quarantined_share": round(share, 6), "quarantined": quarantined, "landed": landed},
    )


def shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def event_type_mix(today: Mapping[str, int], trailing: Sequence[Mapping[str, int]]) -> Outcome:
    """The event-type shares close (total variation distance) to those of the trailing days pooled."""
    if not trailing:
        return Outcome(True, "no trailing days to compare with yet", {"event_type_shares": shares(today)})
    pooled: dict[str, int] = {}
    for counts in trailing:
        for name, n in counts.items():
            pooled[name] = pooled.get(name, 0) + n
    now, before = shares(today), shares(pooled)
    distance = 0.5 * sum(abs(now.get(k, 0.0) - before.get(k, 0.0)) for k in now.keys() | before.keys())
    moved = sorted(now.keys() | before.keys(), key=lambda k: -abs(now.get(k, 0.0) - before.get(k, 0.0)))[:3]
    passed = distance <= MAX_MIX_DISTANCE
    return Outcome(
        passed,
        f"event-type mix moved by {distance:.3f} (limit {MAX_MIX_DISTANCE}); most moved: {', '.join(moved)}",
        {"mix_distance": round(distance, 6), "trailing_days": len(trailing)},
    )


def landed_files(ingested: int, left_out: Mapping[str, str]) -> Outcome:
    """No file that looks like data left out of the day; `left_out` maps each such file to why it was not read."""
    shown = "; ".join(f"{name} ({why})" for name, why in list(left_out.items())[:5])
    more = f" and {len(left_out) - 5} more" if len(left_out) > 5 else ""
    return Outcome(
        not left_out,
        f"{len(left_out)} files that look like data not ingested: {shown}{more}"
        if left_out
        else f"all {ingested} data files ingested",
        {"files_ingested": ingested, "data_files_left_out": len(left_out)},
    )


def length_drift(today: Mapping[str, float], trailing: Sequence[Mapping[str, float]]) -> Outcome:
    """Each sequence-length quantile (p50, p90) within MAX_LENGTH_DRIFT of its trailing median."""
    if not trailing:
        return Outcome(True, "no trailing days to compare with yet", dict(today))
    drifts = {}
    for name, value in today.items():
        before = statistics.median(t[name] for t in trailing)
        drifts[name] = abs(value - before) / before if before else float(value != before)
    worst = max(drifts, key=drifts.__getitem__)
    passed = drifts[worst] <= MAX_LENGTH_DRIFT
    return Outcome(
        passed,
        f"sequence-length {worst} moved {drifts[worst]:.1%} from the trailing median (limit {MAX_LENGTH_DRIFT:.0%})",
        {**{f"{k}_drift": round(v, 4) for k, v in drifts.items()}, "trailing_days": len(trailing)},
    )
