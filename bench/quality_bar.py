"""Issue 17's quality bar on the simulator: the LSTM over months against the LSTM over 28 days, the
legacy baseline, gradient boosting and the ground truth.

    .venv/bin/python bench/quality_bar.py [--profiles 45000] [--seed 2] [--horizon 180] [--json results.json]

Simulates a shop older than the horizon H (it opens `--warmup-days` before the first cut-off's
horizon) and builds the training data of one day D the way trained_lstm_model[D] does (the
cut-off days D-7-k for k < train_days, labels from the simulated raw events of the 7 days after
each, the profile-hash split). The same eligible histories are read twice: over H days and over
28 (eligibility is the same, so the rows are too). On the validation profiles, with a paired
bootstrap over profiles (a profile's histories on consecutive days move together):

  a. the LSTM at H against the LSTM at 28 days (same config): AUC gain >= GAIN_GOAL, and the lower
     bound of its 95% interval above 0;
  b. the LSTM at H against the baseline at H (its C and feature set chosen on held-out training
     profiles): AUC >= baseline - 0.005 and NLL <= baseline + 0.002; "shown" means the one-sided
     95% bound clears it, not only the point estimate;
  c. for reference: the ground truth, and gradient boosting on the baseline's features at H;
     the goal beyond: the LSTM's AUC within TRUTH_GOAL of the truth.

The default size, 45,000 profiles, is about the smallest that meets the issue's counts (>= 100,000
eligible histories over the 7 cut-off days, >= 1,000 validation positives: about 110,000 and
1,600). Peak memory: the largest resident set of the process while each LSTM trains (sampled), and
the process's high-water mark. Hyperparameters and the baseline's C grid were chosen on seeds 11
and 12; the default seed, 2, is for the reported measurement only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import resource
import shlex
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.scoring.predict import predict
from consumer_assets.ml.training import stream
from consumer_assets.ml.training.baseline import LogisticBaseline, baseline_features
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.evaluate import compare_models
from consumer_assets.ml.training.labels import SPLIT_SALT, STOPPING_SALT, validation_mask
from consumer_assets.ml.training.metrics import auc, nll, paired_bootstrap
from consumer_assets.ml.training.stream import HistoryStream
from consumer_assets.ml.training.train import TrainResult, train
from consumer_assets.windows import ELIGIBILITY_DAYS, HORIZON_DAYS, training_cutoffs

# Shared with the tests, not installed with the package: importable from the project root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from consumer_assets_testing.simulated import simulate_histories

# b: the LSTM may trail the baseline by at most this much (fixed here, whatever the asset's
# configured tolerances are).
BAR = {"auc": 0.005, "nll": 0.002}
GAIN_GOAL = 0.010  # a: the AUC the horizon adds to the LSTM
TRUTH_GOAL = 0.04  # beyond: the LSTM's AUC this close to the ground truth's


def tuned_baseline(train_data: SequenceData, cs: list[float]) -> tuple[LogisticBaseline, list[dict[str, float]]]:
    """The baseline whose C and feature set did best on held-out training profiles, refitted on all of them."""
    held = validation_mask(train_data.profile_id, 0.2, salt=STOPPING_SALT)
    fit, check = train_data.take(np.flatnonzero(~held)), train_data.take(np.flatnonzero(held))
    trials = []
    for c in cs:
        for bins in (True, False):
            p = LogisticBaseline(c=c, bins=bins).fit(fit).predict(check)
            trials.append({"c": c, "bins": bins, "nll": nll(check.label, p), "auc": auc(check.label, p)})
    best = min(trials, key=lambda t: t["nll"])
    return LogisticBaseline(c=best["c"], bins=bool(best["bins"])).fit(train_data), trials


def gradient_boosting(train_data: SequenceData, stopping_share: float) -> HistGradientBoostingClassifier:
    """HistGradientBoosting on baseline_features, early-stopped on held-out training profiles."""
    held = validation_mask(train_data.profile_id, stopping_share, salt=STOPPING_SALT)
    fit, check = train_data.take(np.flatnonzero(~held)), train_data.take(np.flatnonzero(held))
    model = HistGradientBoostingClassifier(
        max_iter=1000, learning_rate=0.05, early_stopping=True, n_iter_no_change=20, random_state=0
    )
    return model.fit(
        baseline_features(fit),
        fit.label.astype(np.int64),
        X_val=baseline_features(check),
        y_val=check.label.astype(np.int64),
    )


def time_to_bar(epochs: list, base_auc: float, base_nll: float) -> tuple[int | None, float | None]:
    """First epoch (and training seconds up to it) whose validation point estimates meet the bar."""
    spent = 0.0
    for e in epochs:
        spent += e.seconds
        if e.valid_auc >= base_auc - BAR["auc"] and e.valid_nll <= base_nll + BAR["nll"]:
            return e.epoch, spent
    return None, None


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """The process's resident high-water mark (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def sampled_peak(into: dict[str, float], key: str, every_s: float = 0.05) -> Iterator[None]:
    """into[key]: the largest resident set (MiB) sampled while the block runs."""
    peak, done = [_rss_mib()], threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            peak[0] = max(peak[0], _rss_mib())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        into[key] = max(peak[0], _rss_mib())


def interval(x: tuple[float, float]) -> str:
    return f"[{x[0]:.4f}, {x[1]:.4f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=45_000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 3, 8), help="the training day D")
    parser.add_argument("--horizon", type=int, default=HORIZON_DAYS, help="H, days")
    parser.add_argument("--short-horizon", type=int, default=ELIGIBILITY_DAYS, help="the horizon a. compares with")
    parser.add_argument("--warmup-days", type=int, default=14, help="days the shop is older than the first horizon")
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline-c", default="0.0003,0.001,0.003,0.01,0.1,1", help="C values to choose from")
    parser.add_argument("--config", default="{}", help="LstmConfig overrides as JSON")
    parser.add_argument(
        "--stream-rows",
        type=int,
        default=0,
        help="also train the LSTM at H as trained_lstm_model does, streamed and shuffled in chunks of this many "
        "histories (ml.training.stream), and compare it with the one shuffled whole in memory",
    )
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = dataclasses.replace(LstmConfig(), **json.loads(args.config))
    command = "python bench/quality_bar.py " + shlex.join(sys.argv[1:])
    print(command, flush=True)

    began = time.perf_counter()
    cutoffs = training_cutoffs(args.day, config.train_days)
    sim = simulate_histories(args.profiles, args.seed, cutoffs, horizon_days=args.horizon, warmup_days=args.warmup_days)
    data = SequenceData.from_batches(sim.reader())
    # Who ordered after each cut-off: what a stream labels the histories with.
    positive = sim.histories.filter(pc.equal(sim.histories["label"], 1))
    buyers = pa.table({"cutoff_date": positive["date"], "profile_id": positive["profile_id"]})
    streamed_rows = sim.histories if args.stream_rows else None
    short = SequenceData.from_batches(sim.at_horizon(args.short_horizon).reader())
    n_events, first_day, all_truth = sim.events.num_rows, sim.first_day, sim.truth
    del sim  # the raw events: only the histories are needed from here on
    held = validation_mask(data.profile_id, config.validation_share)
    train_data, valid = data.take(np.flatnonzero(~held)), data.take(np.flatnonzero(held))
    short_train, short_valid = short.take(np.flatnonzero(~held)), short.take(np.flatnonzero(held))
    del data, short
    truth, y = all_truth[held], valid.label
    groups = valid.profile_id.to_numpy(zero_copy_only=False)
    sizes = {
        "profiles": args.profiles,
        "shop_opened": first_day.isoformat(),
        "raw_events": n_events,
        "cutoffs": [c.isoformat() for c in cutoffs],
        "horizon_days": args.horizon,
        "eligible_histories": len(train_data) + len(valid),
        "train_histories": len(train_data),
        "valid_histories": len(valid),
        "valid_profiles": len(np.unique(groups)),
        "valid_positives": int(y.sum()),
        "mean_events": round(float((train_data.events + valid.events) / (len(train_data) + len(valid))), 1),
        "mean_events_short": round(
            float((short_train.events + short_valid.events) / (len(train_data) + len(valid))), 1
        ),
        "data_seconds": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(sizes), flush=True)

    t = time.perf_counter()
    baseline, trials = tuned_baseline(train_data, [float(c) for c in args.baseline_c.split(",")])
    p_base = baseline.predict(valid)
    baseline_seconds = time.perf_counter() - t
    for trial in trials:
        c, bins, held_nll, held_auc = trial["c"], trial["bins"], trial["nll"], trial["auc"]
        print(f"  baseline C={c:<6} bins={bins!s:<5} held-out NLL {held_nll:.5f} AUC {held_auc:.4f}")
    print(
        f"baseline at H (C={baseline.c} bins={baseline.bins}): validation AUC {auc(y, p_base):.4f} "
        f"NLL {nll(y, p_base):.5f} in {baseline_seconds:.0f} s",
        flush=True,
    )

    # c: not the bar, a non-linear model of the same hand-crafted features, for scale. It stops on
    # held-out training profiles as the LSTM does: rows of one profile on consecutive days are
    # near copies, so stopping on held-out rows would stop on what it memorised.
    t = time.perf_counter()
    p_gbm = gradient_boosting(train_data, config.early_stopping_share).predict_proba(baseline_features(valid))[:, 1]
    gbm_seconds = time.perf_counter() - t
    print(
        f"gradient boosting on the baseline's features at H: validation AUC {auc(y, p_gbm):.4f} "
        f"NLL {nll(y, p_gbm):.5f} in {gbm_seconds:.0f} s",
        flush=True,
    )

    def show(e: object) -> None:
        print(
            f"  epoch {e.epoch:2d} loss {e.train_loss:.5f} stop-NLL {e.stopping_nll:.5f} "
            f"valid NLL {e.valid_nll:.5f} AUC {e.valid_auc:.4f}  {e.histories_per_s:,.0f} histories/s "
            f"({e.seconds:.0f} s)",
            flush=True,
        )

    memory: dict[str, float] = {"before_training_mib": _rss_mib()}
    results: dict[str, TrainResult] = {}
    for name, (fit, check) in (("lstm", (train_data, valid)), ("lstm_short", (short_train, short_valid))):
        print(f"LSTM over {args.horizon if name == 'lstm' else args.short_horizon} days:", flush=True)
        with sampled_peak(memory, f"{name}_training_peak_mib"):
            results[name] = train(config, fit, check, on_epoch=show)
    if streamed_rows is not None:
        stream.SHUFFLE_ROWS = args.stream_rows
        parts = HistoryStream.of(streamed_rows, buyers, cutoffs)
        print(f"LSTM over {args.horizon} days, streamed in shuffled chunks of {args.stream_rows:,}:", flush=True)
        with sampled_peak(memory, "lstm_streamed_training_peak_mib"):
            results["lstm_streamed"] = train(config, parts.held_out(config.validation_share, SPLIT_SALT)[0], valid)
        del streamed_rows, parts
    p_lstm = predict(results["lstm"].model, valid)
    p_short = predict(results["lstm_short"].model, short_valid)
    memory["process_peak_mib"] = peak_rss_mib()

    boots = {}
    for metric in ("auc", "nll"):
        pairs = {
            "lstm_vs_lstm_short": (p_lstm, p_short),
            "lstm_vs_baseline": (p_lstm, p_base),
            "gbm_vs_lstm": (p_gbm, p_lstm),
            "truth_vs_lstm": (truth, p_lstm),
        }
        for key, (a, b) in pairs.items():
            boots[f"{key}_{metric}"] = paired_bootstrap(y, a, b, metric, groups=groups, replicates=args.replicates)
    gate = compare_models(y, p_lstm, p_base, groups=groups, replicates=args.replicates, level=0.90)
    if "lstm_streamed" in results:
        p_streamed = predict(results["lstm_streamed"].model, valid)
        for metric in ("auc", "nll"):
            boots[f"streamed_vs_lstm_{metric}"] = paired_bootstrap(
                y, p_streamed, p_lstm, metric, groups=groups, replicates=args.replicates
            )
        streamed_gate = compare_models(y, p_streamed, p_base, groups=groups, replicates=args.replicates, level=0.90)

    h, s = args.horizon, args.short_horizon
    print(
        f"\n95% intervals, bootstrap over {sizes['valid_profiles']:,} validation profiles "
        f"({len(valid):,} histories, {int(y.sum()):,} positives):"
    )
    for metric in ("auc", "nll"):
        M = metric.upper()
        rows = [
            ("truth", boots[f"truth_vs_lstm_{metric}"], "a"),
            (f"gradient boosting (H={h})", boots[f"gbm_vs_lstm_{metric}"], "a"),
            (f"LSTM (H={h})", boots[f"lstm_vs_baseline_{metric}"], "a"),
            (f"LSTM (H={s})", boots[f"lstm_vs_lstm_short_{metric}"], "b"),
            (f"baseline (H={h})", boots[f"lstm_vs_baseline_{metric}"], "b"),
        ]
        for label, boot, side in rows:
            value, ci = (boot.a, boot.a_interval) if side == "a" else (boot.b, boot.b_interval)
            print(f"  {M} {label:<26} {value:.4f} {interval(ci)}")
        for key, label in (
            ("lstm_vs_lstm_short", f"LSTM H={h} - LSTM H={s}"),
            ("lstm_vs_baseline", "LSTM - baseline"),
            ("truth_vs_lstm", "truth - LSTM"),
            ("gbm_vs_lstm", "GBM - LSTM"),
        ):
            boot = boots[f"{key}_{metric}"]
            print(f"  {M} {label:<26} {boot.diff:+.4f} {interval(boot.diff_interval)}")

    gain = boots["lstm_vs_lstm_short_auc"]
    verdict: dict[str, object] = {
        "a_horizon_gain": {
            "auc_gain": gain.diff,
            "interval_95": gain.diff_interval,
            "goal": GAIN_GOAL,
            "met": gain.diff >= GAIN_GOAL and gain.diff_interval[0] > 0,
        }
    }
    print(
        f"a. LSTM H={h} vs H={s}: AUC gain {gain.diff:+.4f} {interval(gain.diff_interval)} "
        f"(goal >= +{GAIN_GOAL}, lower bound > 0): {'met' if verdict['a_horizon_gain']['met'] else 'NOT met'}"
    )
    for metric, tolerance in BAR.items():
        c = gate[metric]
        # Met: the point estimate clears the bar; shown: the one-sided 95% bound does too.
        point_ok, shown = c.better_by >= -tolerance, c.interval[0] >= -tolerance
        verdict[f"b_{metric}"] = {
            "better_by": c.better_by,
            "one_sided_95_bound": c.interval[0],
            "tolerance": tolerance,
            "point_ok": point_ok,
            "shown": shown,
        }
        print(
            f"b. {metric.upper()}: LSTM better than the baseline by {c.better_by:+.4f}, one-sided 95% bound "
            f"{c.interval[0]:+.4f} vs -{tolerance}: {'met and shown' if shown else 'met' if point_ok else 'NOT met'}"
        )
    if "lstm_streamed" in results:
        for metric in ("auc", "nll"):
            boot = boots[f"streamed_vs_lstm_{metric}"]
            print(
                f"streamed: {metric.upper()} {boot.a:.4f}, in memory {boot.b:.4f}: streamed - in memory "
                f"{boot.diff:+.4f} {interval(boot.diff_interval)}"
            )
        for metric, tolerance in BAR.items():
            c = streamed_gate[metric]
            shown, point_ok = c.interval[0] >= -tolerance, c.better_by >= -tolerance
            verdict[f"b_streamed_{metric}"] = {"better_by": c.better_by, "one_sided_95_bound": c.interval[0]}
            said = "met and shown" if shown else "met" if point_ok else "NOT met"
            print(
                f"b. streamed {metric.upper()}: better than the baseline by {c.better_by:+.4f}, one-sided 95% bound "
                f"{c.interval[0]:+.4f} vs -{tolerance}: {said}"
            )
    to_truth = boots["truth_vs_lstm_auc"].diff
    verdict["beyond_truth_gap"] = {"auc_gap": to_truth, "goal": TRUTH_GOAL, "met": to_truth <= TRUTH_GOAL}
    print(
        f"c. truth AUC {boots['truth_vs_lstm_auc'].a:.4f}, gradient boosting {auc(y, p_gbm):.4f}; "
        f"beyond: LSTM within {to_truth:.4f} of the truth (goal <= {TRUTH_GOAL}): "
        f"{'met' if to_truth <= TRUTH_GOAL else 'NOT met'}"
    )
    bar_epoch, bar_seconds = time_to_bar(results["lstm"].epochs, auc(y, p_base), nll(y, p_base))
    for name, r in results.items():
        print(
            f"{name}: best epoch {r.best_epoch} of {len(r.epochs)}, {r.seconds:.0f} s training, "
            f"peak resident memory while training {memory[f'{name}_training_peak_mib']:,.0f} MiB"
        )
    total = time.perf_counter() - began
    print(
        f"bar b first met (point estimates) at epoch {bar_epoch} after {bar_seconds and round(bar_seconds)} s; "
        f"process peak {memory['process_peak_mib']:,.0f} MiB; total {total:.0f} s"
    )
    if args.json:
        figures = {
            "command": command,
            "config": config.to_dict(),
            "data": sizes,
            "baseline": {"c": baseline.c, "bins": baseline.bins, "trials": trials, "seconds": baseline_seconds},
            "gradient_boosting": {"auc": auc(y, p_gbm), "nll": nll(y, p_gbm), "seconds": gbm_seconds},
            "epochs": {name: [e.as_dict() for e in r.epochs] for name, r in results.items()},
            "best_epoch": {name: r.best_epoch for name, r in results.items()},
            "bar_epoch": bar_epoch,
            "bar_seconds": bar_seconds,
            "bootstrap": {k: v.as_dict() for k, v in boots.items()},
            "verdict": verdict,
            "memory_mib": memory,
            "seconds": total,
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
