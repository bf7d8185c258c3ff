"""Issue 8's quality bar on the simulator: the LSTM against the legacy baseline, beside the ground truth.

    .venv/bin/python bench/quality_bar.py [--profiles 100000] [--seed 2] [--json results.json]

Builds the training data of one day D the way trained_lstm_model[D] does (the cut-off days
D-7-k for k < train_days, labels from the simulated raw events of the 7 days after each, the
profile-hash split), trains the LSTM at the default config, fits the baseline with its
regularisation chosen on held-out training profiles, and compares both on the validation
profiles with a paired bootstrap over profiles (a profile's histories on consecutive days move
together). The bar: LSTM AUC >= baseline AUC - 0.005 and NLL <= baseline NLL + 0.002; "shown"
means the one-sided 95% bound of the difference clears it, not only the point estimate.
Hyperparameters were chosen on other seeds (see the report); the default seed is used for this
measurement only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.scoring.predict import predict
from consumer_assets.ml.training.baseline import LogisticBaseline, baseline_features
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.evaluate import compare_models
from consumer_assets.ml.training.labels import STOPPING_SALT, validation_mask
from consumer_assets.ml.training.metrics import auc, nll, paired_bootstrap
from consumer_assets.ml.training.train import train
from consumer_assets.windows import training_cutoffs

# Shared with the tests, not installed with the package: importable from the project root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from consumer_assets_testing.simulated import simulate_histories

# The bar: the LSTM may trail the baseline by at most this much (fixed here, whatever the asset's
# configured tolerances are).
BAR = {"auc": 0.005, "nll": 0.002}


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


def time_to_bar(epochs: list, base_auc: float, base_nll: float) -> tuple[int | None, float | None]:
    """First epoch (and training seconds up to it) whose validation point estimates meet the bar."""
    spent = 0.0
    for e in epochs:
        spent += e.seconds
        if e.valid_auc >= base_auc - BAR["auc"] and e.valid_nll <= base_nll + BAR["nll"]:
            return e.epoch, spent
    return None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 3, 8), help="the training day D")
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline-c", default="0.01,0.1,1,10", help="C values the baseline chooses from")
    parser.add_argument("--config", default="{}", help="LstmConfig overrides as JSON")
    parser.add_argument("--gbm", action="store_true", help="also gradient boosting on the baseline's features")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = dataclasses.replace(LstmConfig(), **json.loads(args.config))
    command = "python bench/quality_bar.py " + shlex.join(sys.argv[1:])
    print(command, flush=True)

    began = time.perf_counter()
    cutoffs = training_cutoffs(args.day, config.train_days)
    sim = simulate_histories(args.profiles, args.seed, cutoffs)
    data = SequenceData.from_batches(sim.reader())
    held = validation_mask(data.profile_id, config.validation_share)
    train_data, valid = data.take(np.flatnonzero(~held)), data.take(np.flatnonzero(held))
    truth = sim.truth[held]
    y = valid.label
    groups = valid.profile_id.to_numpy(zero_copy_only=False)
    sizes = {
        "profiles": args.profiles,
        "cutoffs": [c.isoformat() for c in cutoffs],
        "eligible_histories": len(data),
        "train_histories": len(train_data),
        "valid_histories": len(valid),
        "valid_profiles": len(np.unique(groups)),
        "valid_positives": int(y.sum()),
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
    chosen = f"baseline C={baseline.c} bins={baseline.bins}"
    print(f"{chosen}: validation AUC {auc(y, p_base):.4f} NLL {nll(y, p_base):.5f}", flush=True)

    gbm = {}
    if args.gbm:
        # Not the bar: a non-linear model of the same hand-crafted features, for scale.
        from sklearn.ensemble import HistGradientBoostingClassifier

        t = time.perf_counter()
        model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, early_stopping=True, random_state=0)
        model.fit(baseline_features(train_data), train_data.label.astype(np.int64))
        p_gbm = model.predict_proba(baseline_features(valid))[:, 1]
        gbm = {"auc": auc(y, p_gbm), "nll": nll(y, p_gbm), "seconds": time.perf_counter() - t}
        print(f"gradient boosting on the same features: validation AUC {gbm['auc']:.4f} NLL {gbm['nll']:.5f}")

    def show(e: object) -> None:
        print(
            f"  epoch {e.epoch:2d} loss {e.train_loss:.5f} stop-NLL {e.stopping_nll:.5f} "
            f"valid NLL {e.valid_nll:.5f} AUC {e.valid_auc:.4f}  {e.histories_per_s:,.0f} histories/s",
            flush=True,
        )

    result = train(config, train_data, valid, on_epoch=show)
    p_lstm = predict(result.model, valid)
    bar_epoch, bar_seconds = time_to_bar(result.epochs, auc(y, p_base), nll(y, p_base))

    boots = {}
    for metric in ("auc", "nll"):
        boots[f"lstm_vs_baseline_{metric}"] = paired_bootstrap(
            y, p_lstm, p_base, metric, groups=groups, replicates=args.replicates
        )
        boots[f"truth_vs_lstm_{metric}"] = paired_bootstrap(
            y, truth, p_lstm, metric, groups=groups, replicates=args.replicates
        )
    gate = compare_models(y, p_lstm, p_base, groups=groups, replicates=args.replicates, level=0.90)

    def interval(x: tuple[float, float]) -> str:
        return f"[{x[0]:.4f}, {x[1]:.4f}]"

    print("\n95% intervals, bootstrap over validation profiles:")
    for metric in ("auc", "nll"):
        lb, tl = boots[f"lstm_vs_baseline_{metric}"], boots[f"truth_vs_lstm_{metric}"]
        print(f"  {metric.upper()}  truth    {tl.a:.4f} {interval(tl.a_interval)}")
        print(f"  {metric.upper()}  LSTM     {lb.a:.4f} {interval(lb.a_interval)}")
        print(f"  {metric.upper()}  baseline {lb.b:.4f} {interval(lb.b_interval)}")
        print(f"  {metric.upper()}  LSTM - baseline {lb.diff:+.4f} {interval(lb.diff_interval)}")
    verdict = {}
    for metric, tolerance in BAR.items():
        c = gate[metric]
        # Met: the point estimate clears the bar; shown: the one-sided 95% bound does too.
        point_ok, shown = c.better_by >= -tolerance, c.interval[0] >= -tolerance
        verdict[metric] = {
            "better_by": c.better_by,
            "one_sided_95_bound": c.interval[0],
            "tolerance": tolerance,
            "point_ok": point_ok,
            "shown": shown,
        }
        print(
            f"bar {metric.upper()}: LSTM better by {c.better_by:+.4f}, one-sided 95% bound {c.interval[0]:+.4f} "
            f"vs -{tolerance}: {'met and shown' if shown else 'met' if point_ok else 'NOT met'}"
        )
    print(
        f"LSTM: best epoch {result.best_epoch} of {len(result.epochs)}, {result.seconds:.0f} s training; "
        f"bar first met (point estimates) at epoch {bar_epoch} after {bar_seconds and round(bar_seconds)} s; "
        f"baseline {baseline_seconds:.0f} s; total {time.perf_counter() - began:.0f} s"
    )
    if args.json:
        figures = {
            "command": command,
            "config": config.to_dict(),
            "data": sizes,
            "baseline": {"c": baseline.c, "bins": baseline.bins, "trials": trials, "seconds": baseline_seconds},
            "epochs": [e.as_dict() for e in result.epochs],
            "best_epoch": result.best_epoch,
            "bar_epoch": bar_epoch,
            "bar_seconds": bar_seconds,
            "bootstrap": {k: v.as_dict() for k, v in boots.items()},
            "verdict": verdict,
            "gradient_boosting": gbm,
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
