"""Training and scoring throughput of the LSTM on this machine's CPU, at the default config.

    .venv/bin/python bench/bench_train.py [--profiles 20000] [--threads 1,2] [--epochs 2]
    .venv/bin/python bench/bench_train.py --device cuda --profiles 200000 --no-full   # on a GPU machine

Simulates the shop (default: the main job's 20,000 profiles) and builds one day's training data
(7 cut-off days, histories over `--horizon` days, the profile split). For each torch thread
count it times `--epochs` epochs of training (histories per second of wall time and of CPU time)
and scoring with the per-event probabilities (8,192 histories a chunk). Then one full training at
the default config (early stopping included) with per-epoch validation, the baseline beside it,
and when the LSTM first met the quality bar's point estimates (AUC >= baseline - 0.005, NLL <=
baseline + 0.002). Figures only, no assertions.

With `--device cuda` the timed trainings run on the GPU instead, at the default config and at
hidden 64, each with bf16 autocast on (as training runs there) and off: histories/s per epoch,
peak GPU memory, and whether cuDNN's fused LSTM kernel ran (from the profiler's kernel names).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from quality_bar import time_to_bar

from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.scoring.predict import predict_all
from consumer_assets.ml.training.baseline import LogisticBaseline
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.labels import validation_mask
from consumer_assets.ml.training.metrics import auc, nll
from consumer_assets.ml.training.train import train
from consumer_assets.windows import HORIZON_DAYS, training_cutoffs

# Shared with the tests, not installed with the package: importable from the project root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from consumer_assets_testing.simulated import simulate_histories


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def on_gpu(config: LstmConfig, train_data: SequenceData, epochs: int) -> None:
    """Timed epochs on the GPU at the default config and hidden 64, bf16 autocast on and off."""
    from consumer_assets.ml.model import device as placement

    gpu = torch.device("cuda")
    print(f"GPU: {torch.cuda.get_device_name(gpu)}, cuDNN {torch.backends.cudnn.version()}", flush=True)
    for hidden in (config.hidden, 64):
        for bf16 in (True, False):
            # The one switch training reads (device.autocast): forced here, on every GPU it is on by default.
            placement.bf16_enabled = lambda device, on=bf16: on and device.type == "cuda"  # type: ignore[assignment]
            timed = dataclasses.replace(config, hidden=hidden, epochs=epochs, early_stopping_share=0.0)
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                train(timed, train_data.take(np.arange(min(len(train_data), 4096))), device=gpu, epochs=1)
            kernels = {e.name for e in prof.events()}
            fused = "yes" if any("cudnn" in k.lower() or "rnn" in k.lower() for k in kernels) else "no"
            torch.cuda.reset_peak_memory_stats(gpu)
            result = train(timed, train_data, device=gpu)
            rates = [e.histories_per_s for e in result.epochs]
            print(
                f"hidden={hidden} bf16={'on' if bf16 else 'off'}: {np.mean(rates):,.0f} histories/s per epoch "
                f"(epochs: {', '.join(f'{r:,.0f}' for r in rates)}), 3M histories an epoch in "
                f"{3e6 / np.mean(rates) / 60:.1f} min; peak GPU memory "
                f"{torch.cuda.max_memory_allocated(gpu) / 2**20:,.0f} MiB; cuDNN fused LSTM: {fused}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--horizon", type=int, default=HORIZON_DAYS, help="days of history (H)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed per thread count")
    parser.add_argument("--no-full", action="store_true", help="skip the full training and the bar")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the timed trainings run")
    args = parser.parse_args()
    config = LstmConfig()
    day = dt.date(2026, 3, 8)

    began = time.perf_counter()
    sim = simulate_histories(
        args.profiles, args.seed, training_cutoffs(day, config.train_days), horizon_days=args.horizon
    )
    data = SequenceData.from_batches(sim.reader())
    held = validation_mask(data.profile_id, config.validation_share)
    train_data, valid = data.take(np.flatnonzero(~held)), data.take(np.flatnonzero(held))
    print(
        f"{args.profiles:,} profiles, {len(data):,} histories ({data.events / len(data):.0f} events on average), "
        f"{len(train_data):,} to train on, {len(valid):,} to validate; data in {time.perf_counter() - began:.1f} s",
        flush=True,
    )
    valid_rows = sim.histories.filter(pa.array(held))
    if args.device == "cuda":
        on_gpu(config, train_data, args.epochs)
        return

    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        timed = dataclasses.replace(config, epochs=args.epochs, early_stopping_share=0.0)
        cpu, wall = cpu_seconds(), time.perf_counter()
        result = train(timed, train_data)
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
        rates = [e.histories_per_s for e in result.epochs]
        per_cpu = len(train_data) * len(result.epochs) / cpu
        print(
            f"threads={threads}: training {np.mean(rates):,.0f} histories/s per epoch "
            f"(epochs: {', '.join(f'{r:,.0f}' for r in rates)}), {per_cpu:,.0f} per CPU-second",
            flush=True,
        )
        cpu, wall = cpu_seconds(), time.perf_counter()
        rows = 0
        for batch in valid_rows.to_batches(max_chunksize=8192):
            chunk = SequenceData.from_batches([batch], label_column="", cutoff_column="")
            rows += len(predict_all(result.model, chunk, config.score_batch_size, per_event=True)[0])
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
        print(
            f"threads={threads}: scoring with per-event probabilities {rows / wall:,.0f} histories/s, "
            f"{rows / cpu:,.0f} per CPU-second",
            flush=True,
        )

    if args.no_full:
        return
    torch.set_num_threads(1)
    wall = time.perf_counter()
    result = train(config, train_data, valid)
    wall = time.perf_counter() - wall
    t = time.perf_counter()
    p_base = LogisticBaseline().fit(train_data).predict(valid)
    base_seconds = time.perf_counter() - t
    base_auc, base_nll = auc(valid.label, p_base), nll(valid.label, p_base)
    bar_epoch, bar_seconds = time_to_bar(result.epochs, base_auc, base_nll)
    epochs = [{k: round(v, 5) if isinstance(v, float) else v for k, v in e.as_dict().items()} for e in result.epochs]
    print(json.dumps(epochs, indent=1))
    best = result.epochs[result.best_epoch - 1]
    print(
        f"full default training (1 thread): {len(result.epochs)} epochs in {wall:.0f} s wall (with per-epoch "
        f"validation), best epoch {result.best_epoch}: validation AUC {best.valid_auc:.4f} NLL {best.valid_nll:.5f}; "
        f"baseline AUC {base_auc:.4f} NLL {base_nll:.5f} in {base_seconds:.0f} s; quality bar (point estimates) "
        f"first met at epoch {bar_epoch} after {bar_seconds and round(bar_seconds)} s of training"
    )


if __name__ == "__main__":
    main()
