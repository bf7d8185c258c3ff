"""CPU batch scoring, end to end: a histories Delta table -> scored, explained predictions files.

    .venv/bin/python bench/bench_predict.py [--profiles 1000000] [--runs 3] [--workers 2]
        [--memory-profiles 100000,1000000] [--data-dir data/bench/predict]

What is timed is what the predictions asset does per day: read each profile bucket's committed
histories files (pyarrow, streamed), score them with the LSTM at the default LstmConfig (the
probability after every event), pick the three events that moved each probability most, add
the drift summaries, and write one zstd Parquet file of PREDICTIONS_SCHEMA per bucket
(ml.scoring.buckets.predict_buckets, `--workers` buckets side by side, torch on one thread each).
The model is untrained (seeded): weights do not change the work done.

Printed:
- histories/s end to end, the median of --runs runs (each run listed), and histories per
  CPU-second of this process (the machine is shared: wall time depends on what else runs; the
  load average is printed before and after);
- the LSTM's achieved GFLOP/s. FLOPs per LSTM step and history = 4 gates x 2 matmuls (input
  and recurrent weights) x 2 x hidden x width = 8 x hidden x (inputs + hidden); counted over
  the real events, and over the steps actually computed (real + padding of the length
  batches). Time: the thread CPU time spent inside the LSTM module (forward hooks), so a thread
  waiting for a core shared with other work does not count as slow LSTM;
- beside it, in the same process and the same way (--workers threads, torch on one thread
  each, thread CPU time), plain fp32 torch.matmul of the LSTM's own shapes: every (T, B) batch
  shape the run computed, replayed and weighted by how often it ran, as the input projection
  (T*B, inputs) @ (inputs, 4 hidden) once and the recurrent (B, hidden) @ (hidden, 4 hidden)
  T times (exactly the FLOPs counted for the LSTM), and as one fused (B, inputs + hidden) @
  (inputs + hidden, 4 hidden) per step; and the ratios. The LSTM does more than its matmuls
  (the gates' sigmoids and tanh, the cell update), so the ratio says how close the fused
  kernel comes to matmul speed;
- peak RSS (ru_maxrss, and VmHWM as a check) of a child process that scores
  --memory-profiles histories, for each size, with its RSS before scoring (imports, model,
  table listing) beside it. Memory rises over a process's first few dozen chunks (allocator
  pools, the fused LSTM's kernel cache) and is flat after: 100k profiles are 16 chunks.

The measuring runs in child processes (bench/predict_run.py) started by this one, which imports
nothing big: Linux carries a parent's peak RSS over into a child's ru_maxrss across fork and
exec, so a child of a large parent would report the parent's peak. The histories tables are
built first, in a child of their own: bench/predict_data.py (simulated profiles resampled under
new ids; cached under --data-dir).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from scratch import cached

HERE = Path(__file__).resolve().parent


def child(*args: str, capture: bool = False) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, *args], env=env, check=True, text=True, capture_output=capture)
    return done.stdout if capture else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=200_000, help="histories scored per timed run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="buckets scored side by side")
    parser.add_argument("--memory-profiles", default="50000,200000", help="sizes for peak RSS; empty: skip")
    parser.add_argument("--data-dir", type=Path, default=cached("predict"))
    args = parser.parse_args()
    memory = [int(s) for s in args.memory_profiles.split(",") if s]
    common = ["--workers", str(args.workers), "--data-dir", str(args.data_dir)]

    sizes = ",".join(str(n) for n in sorted({args.profiles, *memory}))
    child(str(HERE / "predict_data.py"), "--sizes", sizes, "--data-dir", str(args.data_dir))
    for size in memory:
        out = child(str(HERE / "predict_run.py"), "rss", "--profiles", str(size), *common, capture=True)
        got = json.loads(out.strip().splitlines()[-1])
        print(
            f"PEAK RSS at {size:,} profiles: {got['peak_mb']:,.0f} MB (ru_maxrss; VmHWM {got['vm_hwm_mb']:,.0f} MB; "
            f"{got['before_mb']:,.0f} MB before scoring; {got['histories_per_s']:,.0f} histories/s in that run)",
            flush=True,
        )
    print(f"load average before the timed runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    timed = ["--profiles", str(args.profiles), "--runs", str(args.runs)]
    child(str(HERE / "predict_run.py"), "throughput", *timed, *common)
    print(f"load average after: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
