"""A sale week in the simulator: drift checks fire, ordinary days stay quiet, an old model underestimates."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from consumer_assets.cli import main
from consumer_assets.histories import encode_histories
from consumer_assets.ml.monitoring.drift import PSI_WARN, Summary, check_drift, summarize_histories, summarize_scores
from consumer_assets.simulation import Sale, ShopParams, ShopSimulator, order_labels
from consumer_assets.windows import ELIGIBILITY_DAYS, HORIZON_DAYS

START = dt.date(2026, 2, 2)
PROFILES = 5000
DAYS = 52  # through the last sale day
# The shop opened this long before START: the first cut-off's whole horizon is simulated, so the
# histories' long-horizon inputs are those of a mature shop, not of one that grows day by day.
OLDER = dt.timedelta(days=HORIZON_DAYS - ELIGIBILITY_DAYS)
# A big sale week, Black Friday scale: traffic x4, conversion x3.
SALE = Sale(START + dt.timedelta(days=45), days=7, lift=3.0, activity_lift=4.0)
TRAILING = 7
WEEK = dt.timedelta(days=7)


@dataclass
class Run:
    sim: ShopSimulator
    events: pa.Table
    inputs: dict[dt.date, Summary]  # histories summary per cut-off day
    scores: dict[dt.date, Summary]  # the exact truth of the profiles with a history, per cut-off day
    truth: dict[dt.date, np.ndarray]  # exact P(order in D+1..D+7) of every profile
    old_truth: dict[dt.date, np.ndarray]  # the same state's P under the old regime (no sale)


def _simulate(params: ShopParams) -> Run:
    sim = ShopSimulator(PROFILES, 3, START - OLDER, params)
    tables, truth, old_truth = [], {}, {}
    for _ in range(DAYS + OLDER.days):
        tables.append(sim.step())
        truth[sim.day] = sim.ground_truth()["p_order_7d"].to_numpy()
        old_truth[sim.day] = sim.ground_truth(with_sale=False)["p_order_7d"].to_numpy()
    events = pa.concat_tables(tables)
    # Cut-offs whose whole horizon was simulated.
    cutoffs = [START + dt.timedelta(days=k) for k in range(ELIGIBILITY_DAYS - 1, DAYS)]
    inputs, scores = {}, {}
    for day, hist in encode_histories(events, cutoffs):
        inputs[day] = summarize_histories(hist.to_batches(max_chunksize=1000))
        scored = pc.is_in(sim.profile_ids, value_set=hist["profile_id"]).to_numpy(zero_copy_only=False)
        scores[day] = summarize_scores([truth[day][scored]])
    return Run(sim, events, inputs, scores, truth, old_truth)


@pytest.fixture(scope="module")
def sale() -> Run:
    return _simulate(ShopParams(sale=SALE))


@pytest.fixture(scope="module")
def ordinary() -> Run:
    return _simulate(ShopParams())


def _psi_max(summaries: dict[dt.date, Summary], day: dt.date) -> tuple[bool, float]:
    trailing = [summaries[day - dt.timedelta(days=k)] for k in range(TRAILING, 0, -1)]
    passed, _, meta = check_drift(summaries[day], trailing)
    assert meta["reference_days"] == TRAILING
    return passed, float(meta["psi_max"])


def _checked_days(run: Run) -> list[dt.date]:
    return sorted(run.inputs)[TRAILING:]


def test_input_drift_fires_from_the_sale_start_and_not_on_ordinary_days(sale: Run, ordinary: Run) -> None:
    days = _checked_days(sale)
    before = [d for d in days if d < SALE.start]
    assert len(before) >= 10
    for day in before:
        assert _psi_max(sale.inputs, day)[0], day
    # The same calendar days without the sale, same seed: quiet throughout.
    for day in days:
        passed, value = _psi_max(ordinary.inputs, day)
        assert passed and value < PSI_WARN / 2, day
    for day in (SALE.start, SALE.start + dt.timedelta(days=1)):
        passed, value = _psi_max(sale.inputs, day)
        assert not passed and value > PSI_WARN, day


def test_output_drift_of_the_exact_scores_fires_once_their_week_reaches_the_sale(sale: Run, ordinary: Run) -> None:
    days = _checked_days(sale)
    # Scores predict the 7 days after their cut-off: those of days before SALE.start - 7 see no sale.
    quiet = [d for d in days if d + WEEK < SALE.start]
    assert len(quiet) >= 3
    for day in quiet:
        assert _psi_max(sale.scores, day)[0], day
    for day in days:
        assert _psi_max(ordinary.scores, day)[0], day
    # The exact truth knows the calendar: scores whose week holds most of the sale move before it starts.
    for k in (3, 2, 1):
        passed, value = _psi_max(sale.scores, SALE.start - dt.timedelta(days=k))
        assert not passed and value > PSI_WARN, k


def test_the_sale_raises_orders_and_a_model_of_the_old_regime_underestimates_them(sale: Run, ordinary: Run) -> None:
    ids = sale.sim.profile_ids
    eve = SALE.start - dt.timedelta(days=1)
    sale_week = order_labels(ids, sale.events, SALE.start, SALE.end)
    week_before = order_labels(ids, sale.events, SALE.start - WEEK, eve)
    assert sale_week.mean() > 2 * week_before.mean()
    # Before the sale the two runs are the same shop, day for day.
    assert np.array_equal(sale.old_truth[eve], ordinary.truth[eve])
    assert np.array_equal(week_before, order_labels(ids, ordinary.events, SALE.start - WEEK, eve))

    def expected(p: np.ndarray) -> tuple[float, float]:
        return p.sum(), np.sqrt((p * (1 - p)).sum())

    realized = sale_week.sum()
    # The exact truth knows the sale: the realized count lies within its noise.
    mean, sd = expected(sale.truth[eve])
    assert abs(realized - mean) < 4 * sd
    # A perfectly calibrated model of the old regime expects far fewer: what prediction_quality records.
    old_mean, old_sd = expected(sale.old_truth[eve])
    assert realized > 2 * old_mean and realized - old_mean > 10 * old_sd


def test_the_truth_stays_exact_across_the_regime_change() -> None:
    start = dt.date(2026, 5, 4)
    # The week after the cut-off holds 2 ordinary days, then 5 sale days.
    params = ShopParams(sale=Sale(start + dt.timedelta(days=3), days=10, lift=2.5))
    sim = ShopSimulator(2000, 11, start, params)
    sim.step()
    p = sim.ground_truth()["p_order_7d"].to_numpy()
    p_old = sim.ground_truth(with_sale=False)["p_order_7d"].to_numpy()
    replicates = 30
    hits = np.zeros(len(p))
    for stream in range(1, replicates + 1):
        fork = sim.fork(stream)
        week = pa.concat_tables([fork.step() for _ in range(7)])
        hits += order_labels(sim.profile_ids, week, sim.day + dt.timedelta(days=1), sim.day + WEEK)
    se = np.sqrt((p * (1 - p)).sum() * replicates) / (len(p) * replicates)
    assert abs(hits.mean() / replicates - p.mean()) < 4 * se
    # The test tells calendars apart: a sale one day later (4 sale days in the week), or none.
    late = ShopSimulator(2000, 11, start, ShopParams(sale=Sale(start + dt.timedelta(days=4), days=10, lift=2.5)))
    late.step()
    p_late = late.ground_truth()["p_order_7d"].to_numpy()
    assert hits.mean() / replicates - p_late.mean() > 4 * se
    assert hits.mean() / replicates - p_old.mean() > 20 * se


def test_simulate_command_sale_options_change_only_the_sale_days(tmp_path: Path) -> None:
    def land(name: str, *sale_args: str) -> Path:
        root = tmp_path / name
        args = ["simulate", "--landing", str(root), "--start", "2026-01-04", "--days", "3", "--profiles", "400"]
        result = CliRunner().invoke(main, [*args, "--seed", "2", *sale_args])
        assert result.exit_code == 0, result.output
        return root

    plain = land("plain")
    sale = land("sale", "--sale-start", "2026-01-06", "--sale-days", "2", "--sale-lift", "3")
    for day in ("2026-01-04", "2026-01-05"):
        for path in sorted((plain / f"date={day}").iterdir()):
            assert (sale / f"date={day}" / path.name).read_bytes() == path.read_bytes()

    def records(root: Path) -> int:
        return json.loads((root / "date=2026-01-06" / "_SUCCESS").read_text())["records"]

    assert records(sale) > 1.5 * records(plain)
    with pytest.raises(ValueError, match="activity_lift"):
        Sale(START, lift=5.0)
    with pytest.raises(ValueError, match="days >= 1"):
        Sale(START, days=0)
