"""The measuring side of bench_predict.py, run in child processes: see bench_predict.py for what and why.

python bench/predict_run.py throughput --profiles N --runs R --workers W --data-dir D
python bench/predict_run.py rss --profiles N --workers W --data-dir D     (prints one JSON line)
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import resource
import shutil
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from predict_data import DAY, files_by_bucket, histories_table  # noqa: E402

from consumer_assets.ml.model.config import LstmConfig  # noqa: E402
from consumer_assets.ml.model.device import torch_threads  # noqa: E402
from consumer_assets.ml.model.network import EventLstm  # noqa: E402
from consumer_assets.ml.scoring.buckets import predict_buckets  # noqa: E402

MODEL_VERSION = "2026-04-13/v1"


def model() -> EventLstm:
    torch.manual_seed(0)
    return EventLstm(LstmConfig()).eval()


def lstm_flops_per_step(m: EventLstm) -> int:
    """4 gates x hidden outputs x (inputs + hidden) multiply-adds (the input and the recurrent matmul) x 2."""
    return 2 * 4 * m.lstm.hidden_size * (m.lstm.input_size + m.lstm.hidden_size)


class LstmTimer:
    """Thread CPU seconds and wall seconds inside model.lstm, and the (T, B) of each call."""

    def __init__(self, m: EventLstm) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        self.cpu = self.wall = 0.0
        self.shapes: collections.Counter[tuple[int, int]] = collections.Counter()
        batch_first = m.lstm.batch_first
        m.lstm.register_forward_pre_hook(self._start)
        m.lstm.register_forward_hook(self._stop)
        self.batch_first = batch_first

    def _start(self, module, inputs) -> None:
        self.local.began = (time.thread_time(), time.perf_counter())

    def _stop(self, module, inputs, output) -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        steps, rows = inputs[0].shape[:2]
        if self.batch_first:
            steps, rows = rows, steps
        with self.lock:
            self.cpu += cpu - self.local.began[0]
            self.wall += wall - self.local.began[1]
            self.shapes[(int(steps), int(rows))] += 1

    def reset(self) -> None:
        self.cpu = self.wall = 0.0
        self.shapes.clear()

    def steps_computed(self) -> int:
        return sum(t * b * n for (t, b), n in self.shapes.items())


def score_once(m: EventLstm, files: dict[int, list[str]], out_dir: Path, workers: int) -> tuple[int, float, float]:
    """(histories, wall seconds, process CPU seconds) of one end-to-end run into a fresh out_dir."""
    shutil.rmtree(out_dir, ignore_errors=True)
    cpu, wall = time.process_time(), time.perf_counter()
    written, summary = predict_buckets(m, files, str(out_dir), DAY, MODEL_VERSION, "bench", workers=workers)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = sum(pq.read_metadata(path).num_rows for path, _ in written)
    assert rows == summary.profiles, (rows, summary.profiles)
    return summary.profiles, wall, cpu


def _own_matmuls(x, w_ih, h, w_hh, gates, step_out, steps: int) -> None:
    torch.matmul(x, w_ih, out=gates)
    for _ in range(steps):
        torch.matmul(h, w_hh, out=step_out)


def _fused_matmuls(xh, w, step_out, steps: int) -> None:
    for _ in range(steps):
        torch.matmul(xh, w, out=step_out)


def matmul_gflops(m: EventLstm, shapes: collections.Counter[tuple[int, int]], workers: int, reps: int = 2) -> dict:
    """GFLOP/s per thread (thread CPU time) of plain fp32 matmuls of the LSTM's shapes, `workers` threads at once.

    Every (T, B) batch shape the run computed is replayed as plain torch.matmul, timed (the best of
    `reps`) and weighted by how often the run computed it: "own" = the LSTM's two matmuls, the input
    projection (T*B, inputs) @ (inputs, 4 hidden) and T times the recurrent (B, hidden) @ (hidden,
    4 hidden); "fused" = T times one (B, inputs + hidden) @ (inputs + hidden, 4 hidden).
    """
    inputs, hidden = m.lstm.input_size, m.lstm.hidden_size
    per_step = lstm_flops_per_step(m)

    def best(call) -> float:
        call()
        times = []
        for _ in range(reps):
            began = time.thread_time()
            call()
            times.append(time.thread_time() - began)
        return min(times)

    @torch.inference_mode()
    def worker(part: list[tuple[tuple[int, int], int]]) -> dict[str, tuple[float, float]]:
        torch.manual_seed(1)
        w_ih, w_hh = torch.randn(inputs, 4 * hidden), torch.randn(hidden, 4 * hidden)
        w = torch.randn(inputs + hidden, 4 * hidden)
        totals = {"own": [0.0, 0.0], "fused": [0.0, 0.0]}
        for (steps, rows), count in part:
            x, h = torch.randn(steps * rows, inputs), torch.randn(rows, hidden)
            xh = torch.randn(rows, inputs + hidden)
            gates, step_out = torch.empty(steps * rows, 4 * hidden), torch.empty(rows, 4 * hidden)

            own = functools.partial(_own_matmuls, x, w_ih, h, w_hh, gates, step_out, steps)
            fused = functools.partial(_fused_matmuls, xh, w, step_out, steps)
            for kind, call in (("own", own), ("fused", fused)):
                totals[kind][0] += count * steps * rows * per_step
                totals[kind][1] += count * best(call)
        return {k: (v[0], v[1]) for k, v in totals.items()}

    items = sorted(shapes.items())
    parts = [items[i::workers] for i in range(workers)]
    # As in predict_buckets: one torch (and MKL) thread in each worker thread.
    with torch_threads(1), ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        results = list(pool.map(worker, parts))
    return {
        kind: sum(r[kind][0] for r in results) / sum(r[kind][1] for r in results) / 1e9 for kind in ("own", "fused")
    }


def events_in(files: dict[int, list[str]]) -> int:
    return sum(int(pq.read_table(p.removeprefix("file://"), columns=["n_events"])["n_events"].to_numpy().sum())
               for paths in files.values() for p in paths)  # fmt: skip


def vm_hwm_mb() -> float:
    """This process's own peak RSS (Linux VmHWM), a cross-check of ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss(args: argparse.Namespace) -> None:
    """One end-to-end run; prints JSON with this process's peak RSS before and after scoring."""
    root, table = histories_table(args.data_dir, args.profiles)
    files = files_by_bucket(root, table)
    m = model()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows, wall, _ = score_once(m, files, args.data_dir / f"out-rss-{args.profiles}", args.workers)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    got = {"rows": rows, "before_mb": before, "peak_mb": peak, "vm_hwm_mb": vm_hwm_mb(), "histories_per_s": rows / wall}
    print(json.dumps(got))


def throughput(args: argparse.Namespace) -> None:
    root, table = histories_table(args.data_dir, args.profiles)
    files = files_by_bucket(root, table)
    events = events_in(files)
    m = model()
    timer = LstmTimer(m)
    per_step = lstm_flops_per_step(m)
    print(
        f"{args.profiles:,} histories, {events:,} events ({events / args.profiles:.1f} per history), "
        f"{len(files)} bucket files, {args.workers} workers, torch threads 1 per worker",
        flush=True,
    )
    score_once(m, files, args.data_dir / "out", args.workers)  # warm-up: page cache, oneDNN kernels
    timer.reset()
    runs = []
    for i in range(args.runs):
        rows, wall, cpu = score_once(m, files, args.data_dir / "out", args.workers)
        runs.append((rows / wall, rows / cpu))
        print(f"run {i + 1}: {rows / wall:,.0f} histories/s ({wall:.1f} s wall, {cpu:.1f} s CPU)", flush=True)
    rate = statistics.median(r for r, _ in runs)
    print(f"END TO END: {rate:,.0f} histories/s (median of {args.runs}); "
          f"{statistics.median(c for _, c in runs):,.0f} histories per CPU-second")  # fmt: skip

    computed = timer.steps_computed()
    real = events * args.runs
    lstm_real = real * per_step / timer.cpu / 1e9
    lstm_computed = computed * per_step / timer.cpu / 1e9
    plain = matmul_gflops(m, timer.shapes, args.workers)
    width = m.lstm.input_size + m.lstm.hidden_size
    print(
        f"LSTM: {per_step:,} FLOPs per step; {computed / real - 1:.1%} of the steps computed are padding; "
        f"{timer.cpu:.1f} thread-CPU s ({timer.wall:.1f} s wall) in the LSTM over {args.runs} runs"
    )
    print(f"LSTM achieved GFLOP/s per thread: {lstm_real:.1f} on real events, {lstm_computed:.1f} on steps computed")
    print(
        f"plain fp32 torch.matmul per thread, {args.workers} threads, the run's {len(timer.shapes)} batch shapes "
        f"(T, B) replayed: the LSTM's own matmuls {plain['own']:.1f} GFLOP/s, "
        f"one fused (B, {width}) @ ({width}, {4 * m.lstm.hidden_size}) per step {plain['fused']:.1f} GFLOP/s"
    )
    print(
        f"RATIO LSTM / plain matmul: {lstm_computed / plain['own']:.2f} (computed steps vs own matmuls), "
        f"{lstm_real / plain['own']:.2f} (real events), {lstm_computed / plain['fused']:.2f} (computed vs fused)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["throughput", "rss"])
    parser.add_argument("--profiles", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    {"throughput": throughput, "rss": rss}[args.mode](args)


if __name__ == "__main__":
    main()
