"""Benchmark one day of the chain through Dagster on a shop older than the horizon: wall time and peak memory per step.

    PYTHONPATH=. .venv/bin/python bench/bench_day.py [--profiles 20000] [--runs 1] [--steps ...] [--no-train]

On a shop of --profiles profiles (day_data.py: synthetic raw_events of the 193 days before D as a
Delta table, day D landed as gzip JSON Lines, an approved stand-in model; prepared once and cached
under data/bench/day/, with consumer_histories of D-13..D-1 and predictions[D-7] materialized by
Dagster runs in the shop's instance), each step is one Dagster run of the project's own job
(definitions.defs: its assets, resources and IO manager, storage and landing under the shop's
folder, Spark local[2]), in a process of its own:

- raw_events[D]: ingestion of the landed day (validate, de-duplicate against D-2..D-1, commit);
- consumer_histories[D]: incremental, continuing the state of D-1;
- predictions[D]: every history of D scored with the model in force;
- prediction_quality[D-7]: the day that becomes judgeable once D has landed;
- training (separately, --no-train skips it): trained_lstm_model[D] on the cut-off days
  D-13..D-7 (--train-days of them), --train-epochs epochs (cold and warm start alike), at most
  --train-histories training histories a day (the cap of the training config; 0: all).

Per step: the run's wall time (execute_in_process, Spark start-up included), the process's (imports
too), the peak resident memory of the step's process (getrusage), and of its whole process tree
(the Python process, Spark's JVM and its Python workers): sampled every 0.2 s, the largest sum of
their resident sizes (which can miss a peak shorter than that; the largest single process's own
high-water mark is exact). The steps run in order, --runs times; each run re-materializes the same
partitions (a re-delivered day), so every run starts from the state of D-1. On a shared machine,
--max-memory-mb stops a step whose process tree grows beyond it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from day_data import DAY, HISTORY_DAYS, prepare_files, shop_dir  # noqa: E402
from scratch import cached  # noqa: E402

JUDGED = DAY - dt.timedelta(days=7)
# step -> (job, asset, partition)
STEPS: dict[str, tuple[str, str, dt.date]] = {
    "raw_events": ("ingest_job", "raw_events", DAY),
    "consumer_histories": ("histories_job", "consumer_histories", DAY),
    "predictions": ("predictions_job", "predictions", DAY),
    "prediction_quality": ("quality_job", "prediction_quality", JUDGED),
    "training": ("training_job", "trained_lstm_model", DAY),
}
DAY_STEPS = [s for s in STEPS if s != "training"]
# Numeric metadata a step's line shows, where the asset reports it.
SHOWN = {
    "raw_events": ("landed", "kept"),
    "consumer_histories": ("profiles", "state_profiles", "spark_seconds"),
    "predictions": ("profiles",),
    "prediction_quality": ("profiles", "auc"),
    "training": (
        "train_histories",
        "epochs",
        "load_seconds",
        "train_seconds",
        "validate_seconds",
        "train_histories_per_s",
    ),
}
SAMPLE_S = 0.2


def task_buckets_for(profiles: int, per_task: int = 31_250) -> int:
    """Spark tasks of consumer_histories: about `per_task` profiles each, a multiple of the 8 profile buckets."""
    return 8 * max(1, round(profiles / per_task / 8))


# -- inside a step's process ------------------------------------------------------------------------


def run_job(
    job: str, asset: str, run_config: dict, partition: dt.date | None = None, last: dt.date | None = None
) -> dict:
    """One run of the project's `job` for `asset` in the shop's instance: {wall, success, metadata, error}."""
    import dagster as dg

    from consumer_assets.automation.jobs import RANGE_END, RANGE_START
    from consumer_assets.definitions import defs
    from consumer_assets.settings import dagster_home

    days: dict = {"partition_key": partition.isoformat()}
    if last is not None and partition is not None and last > partition:
        days = {"tags": {RANGE_START: partition.isoformat(), RANGE_END: last.isoformat()}}
    with dg.DagsterInstance.from_config(str(dagster_home())) as instance:
        started = time.perf_counter()
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(asset)],
            run_config=run_config,
            raise_on_error=False,
            **days,
        )
        wall = time.perf_counter() - started
    metadata: dict[str, float] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == dg.AssetKey(asset):
            for name, value in materialization.metadata.items():
                if isinstance(value.value, int | float) and not isinstance(value.value, bool):
                    metadata[name] = float(value.value)
    failures = [e.message for e in result.all_events if e.is_failure]
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failed_checks = [c.check_name for c in checks if not c.passed]
    return {
        "wall": wall,
        "success": result.success,
        "metadata": metadata,
        "error": failures[-1][-600:] if failures else None,
        "failed_checks": failed_checks,
    }


def step_config(step: str, args: argparse.Namespace) -> dict:
    if step == "consumer_histories":
        return {"ops": {"consumer_histories": {"config": {"task_buckets": args.task_buckets}}}}
    if step == "training":
        config = {
            "epochs": args.train_epochs,
            "warm_start_epochs": args.train_epochs,  # the stand-in model is in force: a warm start
            "train_days": args.train_days,
            "max_train_histories_per_day": args.train_histories // args.train_days if args.train_histories else 0,
            "patience": args.train_epochs,  # every epoch runs
            # The synthetic shop's orders carry no signal a model could learn beyond activity, and the model in
            # force is the untrained stand-in: with the real bars no model would be approved. Approval is not
            # what is measured here, so the bars are lowered out of the way.
            **{"auc_floor": 0.0, "auc_margin": 1.0, "nll_tolerance": 1.0, "ece_tolerance": 1.0},
            "mean_gap_tolerance": 1.0,
        }
        return {"ops": {"trained_lstm_model": {"config": config}}}
    return {}


def child(args: argparse.Namespace) -> dict:
    folder = shop_dir(args.data_dir, args.profiles)
    os.environ["CONSUMER_ASSETS_DATA_DIR"] = str(folder)
    os.environ["CONSUMER_ASSETS_SPARK_MASTER"] = "local[2]"
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if args.child == "prepare":
        return prepare(folder, args)
    job, asset, partition = STEPS[args.child]
    result = run_job(job, asset, step_config(args.child, args), partition)
    return {**result, "self_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def prepare(folder: Path, args: argparse.Namespace) -> dict:
    """The shop's files (day_data), then consumer_histories of D-13..D-1 and predictions[D-7] through Dagster."""
    started = time.perf_counter()
    marker = folder / "prepared.json"
    done = json.loads(marker.read_text()) if marker.exists() else None
    figures = done or prepare_files(folder, args.profiles)
    # Histories of D-7..D-1 (predictions[D-7], the state of D-1), and for training D-13..D-8 too; each
    # range starts from its horizon (every state of the chain is kept: 0.9 KB a profile and day).
    first = DAY - dt.timedelta(days=HISTORY_DAYS if args.with_training else 7)
    last = (
        dt.date.fromisoformat(done["first_history_day"]) - dt.timedelta(days=1) if done else DAY - dt.timedelta(days=1)
    )
    if first <= last:
        histories = run_job("histories_job", "consumer_histories", step_config("consumer_histories", args), first, last)
        if not histories["success"]:
            sys.exit(f"preparing consumer_histories {first}..{last} failed: {histories['error']}")
    if not done:
        scored = run_job("predictions_job", "predictions", {}, JUDGED)
        if not scored["success"]:
            sys.exit(f"preparing predictions[{JUDGED}] failed: {scored['error']}")
    seconds = time.perf_counter() - started + (done["seconds"] if done else 0.0)
    first = min(first, dt.date.fromisoformat(done["first_history_day"])) if done else first
    return {**figures, "task_buckets": args.task_buckets, "first_history_day": first.isoformat(), "seconds": seconds}


# -- the measuring process ------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _status_kb(pid: int) -> tuple[int, int, str]:
    """(VmRSS, VmHWM) in kB and the command name of a process; zeros once it is gone."""
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    except OSError:
        return 0, 0, ""
    kb = lambda f: int(fields.get(f, "0 kB").split()[0])  # noqa: E731
    return kb("VmRSS"), kb("VmHWM"), fields.get("Name", "")


class TreeMemory:
    """Samples a process and its descendants: the largest sum of their RSS, and each one's high-water mark."""

    def __init__(self, pid: int, limit_mb: float) -> None:
        self.pid, self.peak_sum_kb, self.hwm_kb, self.limit_kb = pid, 0, {}, limit_mb * 1024
        self.killed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            tree, pids, total = _children(), [self.pid], 0
            for pid in pids:
                pids.extend(tree.get(pid, []))
                rss, hwm, name = _status_kb(pid)
                total += rss
                if hwm:
                    self.hwm_kb[pid] = max(self.hwm_kb.get(pid, (0, ""))[0], hwm), name
            self.peak_sum_kb = max(self.peak_sum_kb, total)
            if self.limit_kb and total > self.limit_kb and not self.killed:
                # A shared machine: stop the step (and what it started) before it takes the others' memory.
                self.killed = True
                for pid in reversed(pids):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            self._stop.wait(SAMPLE_S)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        largest = max(self.hwm_kb.values(), default=(0, ""))
        return {"tree_peak_mb": self.peak_sum_kb / 1024, "largest_mb": largest[0] / 1024, "largest_name": largest[1]}


def spawn(args: argparse.Namespace, step: str) -> dict:
    command = [sys.executable, __file__, "--child", step, *own_arguments(args)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(process.pid, args.max_memory_mb)
    out, err = process.communicate()
    sampled = memory.stop()
    if memory.killed:
        sys.exit(f"step {step} stopped: its processes held more than --max-memory-mb {args.max_memory_mb:,.0f} MB")
    lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
    if process.returncode or not lines:
        sys.exit(f"step {step} failed:\n{out[-3000:]}\n{err[-5000:]}")
    return {**json.loads(lines[-1][len("RESULT ") :]), **sampled, "process_wall": time.perf_counter() - started}


def own_arguments(args: argparse.Namespace) -> list[str]:
    return [
        *("--profiles", str(args.profiles), "--data-dir", str(args.data_dir)),
        *("--task-buckets", str(args.task_buckets), "--train-epochs", str(args.train_epochs)),
        *("--train-days", str(args.train_days), "--train-histories", str(args.train_histories)),
        *(["--with-training"] if args.with_training else []),
    ]


def line(step: str, runs: list[dict]) -> str:
    walls = [r["wall"] for r in runs]
    last = runs[-1]
    shown = ", ".join(
        f"{name} {last['metadata'][name]:,.{0 if last['metadata'][name] >= 100 else 2}f}"
        for name in SHOWN[step]
        if name in last["metadata"]
    )
    verdict = "ok" if all(r["success"] for r in runs) else f"FAILED: {last['error']}"
    if last["failed_checks"]:
        verdict += f" (checks failed: {', '.join(last['failed_checks'])})"
    return (
        f"  {step:20s} {statistics.median(walls):8.1f} {'(' + ', '.join(f'{w:.1f}' for w in walls) + ')':22s} "
        f"{statistics.median(r['process_wall'] for r in runs):8.1f} {max(r['self_peak_mb'] for r in runs):8,.0f} "
        f"{max(r['tree_peak_mb'] for r in runs):9,.0f} {max(r['largest_mb'] for r in runs):8,.0f} "
        f"{last['largest_name']:9s}"
        f"  {verdict}; {shown}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=20_000, help="shop size (the issue: 1000000, 3000000)")
    parser.add_argument("--runs", type=int, default=1, help="runs of the steps, in order; medians are shown")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)}")
    parser.add_argument("--no-train", action="store_true", help="leave out the training step")
    parser.add_argument("--train-epochs", type=int, default=3)
    parser.add_argument("--train-days", type=int, default=7, help="cut-off days trained on (D-13..D-7 at most)")
    parser.add_argument(
        "--train-histories", type=int, default=0, help="cap of training histories over all days (0: all)"
    )
    parser.add_argument(
        "--task-buckets", type=int, help="Spark tasks of consumer_histories (default: ~31,250 profiles each)"
    )
    parser.add_argument("--data-dir", type=Path, default=cached("day"))
    parser.add_argument(
        "--max-memory-mb",
        type=float,
        default=0,
        help="stop a step whose processes hold more than this together (0: never)",
    )
    parser.add_argument("--with-training", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["prepare", *STEPS], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.task_buckets = args.task_buckets or task_buckets_for(args.profiles)
    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return

    steps = [s.strip() for s in args.steps.split(",") if s.strip() and not (args.no_train and s.strip() == "training")]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {unknown}; the steps are {', '.join(STEPS)}")
    args.with_training = "training" in steps
    marker = shop_dir(args.data_dir, args.profiles) / "prepared.json"
    needed = DAY - dt.timedelta(days=HISTORY_DAYS if args.with_training else 7)
    if not marker.exists() or json.loads(marker.read_text())["first_history_day"] > needed.isoformat():
        print(f"preparing a shop of {args.profiles:,} profiles under {marker.parent} (once; untimed)", flush=True)
        prepared = spawn(args, "prepare")
        marker.write_text(json.dumps(prepared))
    prepared = json.loads(marker.read_text())
    shop = prepared["shop"]
    print(
        f"shop: {args.profiles:,} profiles, D = {DAY}; {shop['profiles_in_horizon']:,} with an event in D's horizon, "
        f"{shop['eligible']:,} eligible; {prepared['raw_events_stored']:,} raw events stored before D, "
        f"{prepared['landed_events']:,} landed on D; prepared in {prepared['seconds']:.0f} s"
    )
    results: dict[str, list[dict]] = {step: [] for step in steps}
    for _ in range(args.runs):
        for step in steps:
            results[step].append(spawn(args, step))
    print(
        f"\n  {'step (Dagster run)':20s} {'run s':>8s} {'(runs)':22s} {'proc. s':>8s} {'self MB':>8s} "
        f"{'tree MB':>9s} {'max 1 MB':>8s} {'(which)':9s}  result"
    )
    for step in steps:
        print(line(step, results[step]))
    day = [s for s in steps if s in DAY_STEPS]
    if day:
        total = sum(statistics.median(r["wall"] for r in results[s]) for s in day)
        process = sum(statistics.median(r["process_wall"] for r in results[s]) for s in day)
        peak = max(r["tree_peak_mb"] for s in day for r in results[s])
        print(
            f"DAY ({len(day)} steps): {total:.1f} s in Dagster runs ({process:.1f} s with process start-up), "
            f"peak memory {peak:,.0f} MB (a step's process tree)"
        )
    if "training" in steps:
        t = results["training"][-1]["metadata"]
        print(
            f"TRAINING: {statistics.median(r['wall'] for r in results['training']):.1f} s for "
            f"{t.get('train_histories', float('nan')):,.0f} histories x {t.get('epochs', float('nan')):.0f} epochs, "
            f"{t.get('train_histories_per_s', float('nan')):,.0f} histories/s per epoch, peak memory "
            f"{max(r['tree_peak_mb'] for r in results['training']):,.0f} MB"
        )
    print(
        "run s: the Dagster run (Spark start-up included); proc. s: its process (imports too); self MB: the step "
        f"process's peak RSS; tree MB: the largest sum of RSS over its process tree (Spark's JVM and Python workers "
        f"included, sampled every {SAMPLE_S} s); max 1 MB: the largest single process's high-water mark"
    )


if __name__ == "__main__":
    main()
