"""Training as the training set grows: peak memory and throughput of the day's training, streamed
from a Delta table, in one process or data-parallel in several.

    .venv/bin/python bench/bench_train_scale.py [--sizes 500000,1000000,3000000] [--processes 1] [--epochs 1]
    .venv/bin/python bench/bench_train_scale.py --sizes 200000 --processes 1,2 --runs 3   # do two processes pay?

For each size N (training histories, after the validation profiles are held out), a consumer_histories
table of N / (1 - validation_share) histories over the 7 cut-off days of a day's training is built once
under --data-dir (default data/bench/train): simulated histories (`--source-profiles` shoppers)
resampled under new ids, as bench/predict_data.py does for scoring, with the simulation's labels
as one order event per buyer after its cut-off. Then, in a fresh process per run (so its peak
resident memory is its own; with several processes, torchrun's children are added up), the day's
training runs as trained_lstm_model runs it (ml.training.day.train_daily at the default config,
`--epochs` epochs, early stopping off so that every epoch runs): the label pass, the training
epochs, the baseline and the validation of both with the paired bootstrap. Printed per size: peak
memory, training histories/s per epoch, and the seconds of each phase. The machine is shared:
with --runs > 1 the figures are medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from scratch import cached

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS, profile_bucket
from consumer_assets.histories.schema import HISTORIES_SCHEMA
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.storage.tables import TableStore
from consumer_assets.storage.writes import TableWrite, part_path, write_parquet
from consumer_assets.windows import training_cutoffs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from consumer_assets_testing.simulated import simulate_histories

DAY = dt.date(2026, 4, 27)
TABLE = "consumer_histories"
WRITE_STEP = 131_072


def training_table(data_dir: Path, train_rows: int, source_profiles: int, seed: int) -> Path:
    """A storage root with a consumer_histories table of the day's cut-off days holding about
    `train_rows` training histories, and orders.parquet (one order event per buyer); built once."""
    config = LstmConfig()
    rows = round(train_rows / (1 - config.validation_share))
    root = data_dir / f"train-{rows}-{source_profiles}-{seed}"
    if (root / "_complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    cutoffs = training_cutoffs(DAY, config.train_days)
    sim = simulate_histories(source_profiles, seed, cutoffs)
    source = sim.histories
    rng = np.random.default_rng(seed)
    store = TableStore.at(str(root))
    write = TableWrite(store, TABLE, HISTORIES_SCHEMA, partition_by=("date", "profile_bucket"))
    buyers: list[pa.Table] = []
    per_day = -(-rows // len(cutoffs))
    for d, cutoff in enumerate(cutoffs):
        of_day = np.flatnonzero(pc.equal(source["date"], pa.scalar(cutoff, pa.date32())).to_numpy(zero_copy_only=False))
        picks = of_day[rng.integers(0, len(of_day), per_day)]
        # The same profile on every cut-off day, as a shop's profiles are: ids by position.
        ids = pa.array([f"bench-{i:08d}" for i in range(per_day)], pa.string())
        buckets = profile_bucket(ids, NUM_PROFILE_BUCKETS)
        labels = source["label"].to_numpy()[picks]
        bought = ids.filter(pa.array(labels == 1))
        buyers.append(
            pa.table({"profile_id": bought, "cutoff": pa.repeat(pa.scalar(cutoff, pa.date32()), len(bought))})
        )
        for bucket in range(NUM_PROFILE_BUCKETS):
            mine = np.flatnonzero(buckets == bucket)
            parts = []
            for start in range(0, len(mine), WRITE_STEP):
                step = mine[start : start + WRITE_STEP]
                part = source.select(HISTORIES_SCHEMA.names).take(pa.array(picks[step]))
                parts.append(part.set_column(0, "profile_id", ids.take(pa.array(step))).cast(HISTORIES_SCHEMA))
            partition = {"date": cutoff, "profile_bucket": bucket}
            path = part_path(partition, f"bench{d}", bucket, write.uri)
            write_parquet(pa.concat_tables(parts).combine_chunks(), path)
            write.adopt_file(path, partition)
    write.commit(cutoffs, {"bench": "bench_train_scale", "rows": rows})
    buyer_rows = pa.concat_tables(buyers)
    # One order at noon of the day after the cut-off: order_profiles makes these the labels.
    ts = [dt.datetime.combine(c + dt.timedelta(days=1), dt.time(12), dt.UTC) for c in buyer_rows["cutoff"].to_pylist()]
    orders = pa.table(
        {
            "profile_id": buyer_rows["profile_id"],
            "ts": pa.array(ts, pa.timestamp("us", "UTC")),
            "event_type": pa.repeat(pa.scalar("order"), buyer_rows.num_rows),
        }
    )
    pq.write_table(orders, root / "orders.parquet")
    (root / "_complete").write_text(f"{rows}\n")
    return root


def in_memory(root: Path, epochs: int) -> dict:
    """The reference, as training ran before it streamed: every training history in memory
    (SequenceData, shuffled as a whole each epoch), then the same epochs; its throughput, peak
    memory and validation AUC (the validation histories streamed, as the streamed run scores them)."""
    from consumer_assets.ml.training.data import SequenceData
    from consumer_assets.ml.training.labels import SPLIT_SALT, order_profiles
    from consumer_assets.ml.training.stream import HistoryStream
    from consumer_assets.ml.training.train import train

    config = dataclasses.replace(LstmConfig(), epochs=epochs, early_stopping_share=0.0)
    cutoffs = training_cutoffs(DAY, config.train_days)
    buyers = order_profiles(pq.read_table(root / "orders.parquet"), cutoffs)
    dataset = TableStore.at(str(root)).dataset(TABLE, [c.isoformat() for c in cutoffs])
    stream = HistoryStream.of(dataset, buyers, cutoffs)
    training, valid = stream.held_out(config.validation_share, SPLIT_SALT)
    torch.set_num_threads(1)  # as train_daily runs it
    began = time.perf_counter()
    data = SequenceData.concat(list(training.chunks()))
    loaded = time.perf_counter()
    result = train(config, data, valid)
    return {
        "lstm_auc": result.epochs[-1].valid_auc,
        "rates": [e.histories_per_s for e in result.epochs],
        "load_s": loaded - began,
        "train_s": time.perf_counter() - loaded,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_training(root: Path, epochs: int, processes: int) -> dict:
    """The day's training over the table at `root` in this process; its figures."""
    from consumer_assets.ml.training.day import train_daily

    config = dataclasses.replace(LstmConfig(), epochs=epochs, early_stopping_share=0.0)
    cutoffs = [c.isoformat() for c in training_cutoffs(DAY, config.train_days)]
    dataset = TableStore.at(str(root)).dataset(TABLE, cutoffs)
    began = time.perf_counter()
    outcome = train_daily(
        DAY, dataset, pq.read_table(root / "orders.parquet"), config, threads=1, processes=processes, replicates=200
    )
    m = outcome.metrics
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "train_histories": m["train_histories"],
        "validation_histories": m["lstm_histories"],
        "rates": [e.histories_per_s for e in outcome.epochs],
        "load_s": m["load_seconds"],
        "train_s": m["train_seconds"],
        "validate_s": m["validate_seconds"],
        "wall_s": time.perf_counter() - began,
        "lstm_auc": m["lstm_auc"],
        "baseline_auc": m["baseline_auc"],
        # A process's own peak, and (with torchrun) the largest of its children's: each training
        # process holds about the same, so the machine holds about processes x that.
        "peak_mb": own,
        "children_peak_mb": children if processes > 1 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500000,1000000,3000000", help="training histories, comma-separated")
    parser.add_argument("--processes", default="1", help="process counts to compare, comma-separated")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--source-profiles", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--data-dir", type=Path, default=cached("train"))
    parser.add_argument(
        "--in-memory", action="store_true", help="also time training with every history in memory (the old way)"
    )
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "EPOCHS", "PROCESSES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        root, epochs, processes = args.child
        if processes == "memory":
            print(json.dumps(in_memory(Path(root), int(epochs))))
        else:
            print(json.dumps(run_training(Path(root), int(epochs), int(processes))))
        return
    for size in (int(s) for s in args.sizes.split(",")):
        began = time.perf_counter()
        root = training_table(args.data_dir, size, args.source_profiles, args.seed)
        print(f"{size:,} training histories: table at {root} ({time.perf_counter() - began:.0f} s)", flush=True)
        for processes in (int(p) for p in args.processes.split(",")):
            runs = []
            for _ in range(args.runs):
                child = [sys.executable, __file__, "--child", str(root), str(args.epochs), str(processes)]
                out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
                runs.append(json.loads(out.strip().splitlines()[-1]))

            def med(key: str, runs: list[dict] = runs) -> float:
                return statistics.median(r[key] for r in runs)

            rate = statistics.median(statistics.mean(r["rates"]) for r in runs)
            first = runs[0]
            print(
                f"  processes={processes}: {first['train_histories']:,.0f} training and "
                f"{first['validation_histories']:,.0f} validation histories; peak memory {med('peak_mb'):,.0f} MB"
                + (f" (+ each of {processes} trainers {med('children_peak_mb'):,.0f} MB)" if processes > 1 else "")
                + f"; training {rate:,.0f} histories/s per epoch; phases: labels and counts {med('load_s'):.0f} s, "
                f"training {med('train_s'):.0f} s, baseline and validation {med('validate_s'):.0f} s, "
                f"all {med('wall_s'):.0f} s; AUC LSTM {first['lstm_auc']:.3f} baseline {first['baseline_auc']:.3f}"
                f" ({len(runs)} run(s))",
                flush=True,
            )
        if args.in_memory:
            child = [sys.executable, __file__, "--child", str(root), str(args.epochs), "memory"]
            ref = [json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)]
            rate = statistics.median(statistics.mean(r["rates"]) for r in ref)
            print(
                f"  in memory (before streaming): peak memory {ref[0]['peak_mb']:,.0f} MB; training {rate:,.0f} "
                f"histories/s per epoch; loading {ref[0]['load_s']:.0f} s, training {ref[0]['train_s']:.0f} s; "
                f"AUC LSTM {ref[0]['lstm_auc']:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
