"""Benchmark consumer_histories kept incrementally: a day from the day before's state, against building it.

    PYTHONPATH=. .venv/bin/python bench/bench_histories.py [--profiles 250000,1000000] [--runs 3] [--json F]

For each shop size, on a synthetic shop older than the horizon (bench/histories_data.py: 181 days,
cached under --data-dir, data/bench/histories by default), one Spark session (local[2]) computes the last day D in
several ways, each `--runs` times, the order rotating (ratios are of medians of the same run):

- incremental: the H = 180 day from the state of D-1 plus raw_events[D] (the daily path);
- 28-day job: H = 28 built from raw_events[D-27..D], the work the job did before the horizon;
- full rebuild: H = 180 built from raw_events[D-179..D] (the first day, a gap, a re-delivery).

The task buckets grow with the shop (--profiles-per-task: 8 at 250k profiles, 32 at 1M). raw_events
has 8 buckets, so with 32 task buckets each raw file is read by 4 tasks: the builds also run in 8
tasks, and the ratios use each build at its faster count. The state of D-1 comes first from one
H = 180 rebuild in the shop's task buckets (timed once). Each job runs the project's tasks
(histories.tasks, histories.output); each task records its CPU time and its Python worker's peak
resident memory (the high-water mark reset as it starts: /proc/self/clear_refs), so the peak per
task can be compared across sizes; the CPU time, added up over tasks, is steadier than wall time
on a shared machine. The incremental day's histories and state are checked to be the rebuild's,
row for row. DuckDB runs the test oracle's fast query (list_histories_sql, DuckDB's own hash for
the id buckets) over the same 28 days, as a reference for the 28-day job. Spark start-up is not
timed; the raw files are in the page cache (written just before), for every job alike.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # the oracle (consumer_assets_testing) and the generator

from histories_data import generate  # noqa: E402
from scratch import cached  # noqa: E402

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS  # noqa: E402
from consumer_assets.histories.output import WRITTEN_SCHEMA, Outputs, WrittenDay, summarize_written  # noqa: E402
from consumer_assets.histories.tasks import BucketTask, plan_tasks  # noqa: E402

LAST_DAY = dt.date(2024, 3, 28)
HORIZON, TODAY = 180, 28  # the horizon, and the days today's job reads
TASK_FIELDS = [pa.field(name, pa.float64()) for name in ("task_seconds", "task_cpu", "rss_start_mb", "peak_mb")]


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class Job:
    """One way to compute a day: from the day before's state or from raw_events, over a horizon, in task buckets."""

    name: str
    horizon_days: int
    from_state: bool
    task_buckets: int


def jobs_for(task_buckets: int) -> list[Job]:
    """The incremental day in the shop's task buckets and the builds it is compared with.

    With more task buckets than raw_events has, each raw file is read by several tasks, each keeping
    its profiles: the builds run in raw_events' own bucket count too, where each task reads its
    files whole (the rebuild only there; in the shop's count it builds the state of D-1, once)."""
    jobs = [Job(f"incremental, {task_buckets} tasks", HORIZON, True, task_buckets)]
    jobs += [Job(f"28-day job, {n} tasks", TODAY, False, n) for n in sorted({task_buckets, NUM_PROFILE_BUCKETS})[::-1]]
    return [*jobs, Job(f"full rebuild, {NUM_PROFILE_BUCKETS} tasks", HORIZON, False, NUM_PROFILE_BUCKETS)]


def measured_task(task: BucketTask, out: Outputs) -> Iterator[pa.RecordBatch]:
    """write_task, each row with the task's time and its worker's resident memory: at the start and at peak."""
    from consumer_assets.histories.output import write_task

    with contextlib.suppress(OSError):  # the peak from now on, not since the (reused) worker started
        Path("/proc/self/clear_refs").write_text("5")
    start, cpu, rss = time.perf_counter(), time.process_time(), _status_mb("VmRSS")
    batches = list(write_task(task, out))
    extra = [time.perf_counter() - start, time.process_time() - cpu, rss, _status_mb("VmHWM")]
    for batch in batches:
        yield pa.RecordBatch.from_arrays(
            [*batch.columns, *(pa.array([x] * batch.num_rows, pa.float64()) for x in extra)],
            schema=pa.schema([*WRITTEN_SCHEMA, *TASK_FIELDS]),
        )


def run_job(spark, tasks: list[BucketTask], out: Outputs) -> tuple[WrittenDay, list[dict]]:
    """spark.write_histories with each task measured: what the day got, and one row per task."""
    from consumer_assets.histories.spark import _map_tasks

    schema = pa.schema([*WRITTEN_SCHEMA, *TASK_FIELDS])
    rows = [r.asDict() for r in _map_tasks(spark, tasks, lambda t: measured_task(t, out), schema).collect()]
    (day,) = summarize_written(rows).values()
    return day, rows


def _bytes(files: tuple[tuple[str, int], ...]) -> int:
    return sum(os.path.getsize(path) for path, _ in files)


def _task_of(path: str) -> int:
    return int(Path(path).stem.rsplit("-", 1)[1])


def _same_rows(a: tuple[tuple[str, int], ...], b: tuple[tuple[str, int], ...]) -> bool:
    """Two writes hold the same rows, profile bucket by profile bucket, whatever their task buckets."""
    buckets = {bucket for _, bucket in a} | {bucket for _, bucket in b}
    for bucket in buckets:
        x, y = ([pq.read_table(p) for p, of in files if of == bucket] for files in (a, b))
        x, y = (pa.concat_tables(t).sort_by("profile_id") for t in (x, y))
        if not x.equals(y):
            return False
    return True


def child_spark(files: dict, out: Path, runs: int, task_buckets: int, driver_memory: str) -> dict:
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    # The Python workers import this checkout's package, not another copy installed in the environment.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    from pyspark.sql import SparkSession

    start = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", driver_memory)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - start
    days = {dt.date.fromisoformat(day): paths for day, paths in files.items()}
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}  # per run, the tasks' CPU time added up
    tasks: dict[str, list[dict]] = {}  # per task of every run, what measured_task gave
    written: dict[str, WrittenDay] = {}

    def run(job: Job, day: dt.date, state_files: list[list[str]] | None = None) -> None:
        shutil.rmtree(out / job.name, ignore_errors=True)
        where = Outputs(str(out / job.name / "histories"), "h", str(out / job.name / "state"), "s")
        plan = plan_tasks(days, [day], job.horizon_days, state_files, job.task_buckets)
        start = time.perf_counter()
        written[job.name], rows = run_job(spark, plan, where)
        times.setdefault(job.name, []).append(time.perf_counter() - start)
        cpu.setdefault(job.name, []).append(sum(r["task_cpu"] for r in rows))
        tasks.setdefault(job.name, []).extend(rows)

    # The state of D-1, from its horizon's raw events, in the shop's task buckets: a rebuild, timed once.
    prep = Job(f"rebuild of D-1, {task_buckets} tasks", HORIZON, False, task_buckets)
    run(prep, LAST_DAY - dt.timedelta(days=1))
    state_files: list[list[str]] = [[] for _ in range(task_buckets)]
    for path, _ in written[prep.name].state_files:
        state_files[_task_of(path)].append(path)
    jobs = jobs_for(task_buckets)
    for k in range(runs):
        for job in jobs[k % len(jobs) :] + jobs[: k % len(jobs)]:  # each job in each place in turn
            run(job, LAST_DAY, state_files if job.from_state else None)
    spark.stop()
    inc, full = written[jobs[0].name], written[jobs[-1].name]
    return {
        "startup": startup,
        "jobs": [job.__dict__ for job in [*jobs, prep]],
        "times": times,
        "cpu": cpu,
        "peak_mb": {job: [r["peak_mb"] for r in rows] for job, rows in tasks.items()},
        "rss_start_mb": {job: [r["rss_start_mb"] for r in rows] for job, rows in tasks.items()},
        "task_seconds": {job: [r["task_seconds"] for r in rows] for job, rows in tasks.items()},
        "written": {
            job: {
                "profiles": day.profiles,
                "events": day.events,
                "histories_bytes": _bytes(day.files),
                "state_profiles": day.state_profiles,
                "state_events": day.state_events,
                "state_bytes": _bytes(day.state_files),
            }
            for job, day in written.items()
        },
        "same_histories": _same_rows(inc.files, full.files),
        "same_state": _same_rows(inc.state_files, full.state_files),
    }


def child_duckdb(files: dict, out: Path, runs: int) -> dict:
    from consumer_assets_testing.oracle import connect, list_histories_sql, native_bucket_sql

    first = LAST_DAY - dt.timedelta(days=TODAY - 1)
    paths = [p for day, by_bucket in files.items() if dt.date.fromisoformat(day) >= first for b in by_bucket for p in b]
    times = []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        con = connect(threads=2)
        con.execute("SET memory_limit = '6GB'")  # a shared machine: DuckDB would take 80 % of it
        start = time.perf_counter()
        query = list_histories_sql(paths, LAST_DAY, native_bucket_sql, horizon_days=TODAY)
        con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet, PER_THREAD_OUTPUT)")
        times.append(time.perf_counter() - start)
        con.close()
    return {"times": times, "rows": pq.ParquetDataset(out).read(columns=["n_events"]).num_rows}


def task_buckets_for(profiles: int, per_task: int) -> int:
    """Enough task buckets for about `per_task` profiles each: a multiple of the raw_events layout's."""
    return NUM_PROFILE_BUCKETS * max(1, round(profiles / per_task / NUM_PROFILE_BUCKETS))


def _spawn(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.exit(f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _reads(job: dict, events: dict[str, int], state_events: int, day_before: bool = False) -> str:
    days = sorted(events)[: -1 if day_before else None]
    if job["from_state"]:
        return f"state of D-1 ({state_events / 1e6:.1f}M ev) + raw_events[D] ({events[days[-1]] / 1e6:.2f}M ev)"
    window = sum(events[d] for d in days[-job["horizon_days"] :])
    share = job["task_buckets"] // NUM_PROFILE_BUCKETS
    times = f", each file by {share} tasks" if share > 1 else ""
    return f"{job['horizon_days']} days of raw_events ({window / 1e6:.1f}M ev{times})"


def report(profiles: int, data: dict, spark: dict, duck: dict | None) -> dict:
    """Print one size's figures; return its line of the summary."""
    events, shop = data["events"], data["shop"]
    jobs = spark["jobs"]  # the incremental day, the builds of D, and (last, run once) the rebuild of D-1
    inc = jobs[0]
    wall = {job["name"]: _median(spark["times"][job["name"]]) for job in jobs}
    cpu = {job["name"]: _median(spark["cpu"][job["name"]]) for job in jobs}
    # Each build at its best task count (by wall time), for the ratios.
    best = {}
    for kind, horizon in (("28-day job", TODAY), ("full rebuild", HORIZON)):
        name = min((j["name"] for j in jobs[1:-1] if j["horizon_days"] == horizon), key=wall.__getitem__)
        best[kind] = {"name": name, "wall": wall[name], "cpu": cpu[name]}
    state = spark["written"][inc["name"]]
    print(
        f"\n{profiles:,} profiles: {len(events)} days, {sum(events.values()) / 1e6:.1f}M raw events; on D = "
        f"{max(events)} {shop['profiles_in_horizon']:,} profiles have an event in the {HORIZON}-day horizon, "
        f"{shop['eligible']:,} are eligible, with a median of {shop['eligible_events_p50']:.0f} events over it "
        f"(p90 {shop['eligible_events_p90']:.0f})"
    )
    print(
        f"  {'job (day D)':24s} {'reads':56s} {'wall s':>6s} {'(runs)':18s} {'CPU s':>6s}  "
        f"{'x best 28-day':>13s} {'x best rebuild':>14s}  {'peak RSS/task MB':>16s}"
    )
    print(
        f"  {'':24s} {'':56s} {'median':>6s} {'':18s} {'median':>6s}  {'wall / CPU':>13s} {'wall / CPU':>14s}  "
        + f"{'max (median)':>16s}"
    )
    for job in jobs:
        name = job["name"]
        peaks = spark["peak_mb"][name]
        runs = "(" + ", ".join(f"{t:.1f}" for t in spark["times"][name]) + ")"
        ratios = [f"{wall[name] / b['wall']:.2f} / {cpu[name] / b['cpu']:.2f}" for b in best.values()]
        print(
            f"  {name:24s} {_reads(job, events, state['state_events'], job is jobs[-1]):56s} {wall[name]:6.1f} "
            f"{runs:18s} {cpu[name]:6.1f}  {ratios[0]:>13s} {ratios[1]:>14s}  "
            f"{max(peaks):7,.0f} ({_median(peaks):,.0f})"
        )
    if duck:
        runs = "(" + ", ".join(f"{t:.1f}" for t in duck["times"]) + ")"
        print(
            f"  {'DuckDB, 28 days':24s} {'list_histories_sql over the same 28 days':56s} "
            f"{_median(duck['times']):6.1f} {runs}"
        )
    print(
        f"  (Spark start-up {spark['startup']:.1f} s, not counted. CPU: the Python CPU time of the tasks, added up. "
        "The rebuild of D-1 makes the incremental day's state)"
    )
    for job in jobs[:2]:
        w = spark["written"][job["name"]]
        state_mb, per_profile = w["state_bytes"] / 1e6, w["state_bytes"] / max(1, w["state_profiles"])
        print(
            f"  output of the {job['name'].split(',')[0]}: {w['profiles']:,} histories "
            f"({w['events'] / 1e6:.1f}M events, {w['histories_bytes'] / 1e6:,.0f} MB); state {w['state_profiles']:,} "
            f"profiles, {w['state_events'] / 1e6:.1f}M events, {state_mb:,.0f} MB on disk ({per_profile:,.0f} B a "
            f"profile, {w['state_bytes'] / max(1, w['state_events']):.1f} B an event)"
        )
    print(
        f"  incremental == full rebuild, row for row: histories {spark['same_histories']}, state {spark['same_state']}"
    )
    rebuild = jobs[-1]["name"]  # in the shop's task buckets
    return {
        "profiles": profiles,
        "tasks": inc["task_buckets"],
        "incremental": {"wall": wall[inc["name"]], "cpu": cpu[inc["name"]]},
        **best,
        "state_mb": state["state_bytes"] / 1e6,
        "state_b_per_profile": state["state_bytes"] / max(1, state["state_profiles"]),
        "histories_mb": state["histories_bytes"] / 1e6,
        "peak_incremental": max(spark["peak_mb"][inc["name"]]),
        "peak_rebuild": max(spark["peak_mb"][rebuild]),
        "rss_start": _median(spark["rss_start_mb"][inc["name"]]),
    }


def summary(rows: list[dict]) -> None:
    print(
        f"\n{'profiles':>10s} {'tasks':>5s} {'state MB':>8s} {'B/profile':>9s} {'histories MB':>12s}  "
        f"{'incr. s':>7s} {'28-day s':>8s} {'rebuild s':>9s}  {'incr./28-day':>12s} {'rebuild/incr.':>13s}  "
        f"{'peak RSS/task MB':>16s}"
    )
    print(f"{'':>57s}{'wall / CPU, medians':^26s}  {'wall / CPU':>12s} {'wall / CPU':>13s}  {'incr. (rebuild)':>16s}")
    for r in rows:
        inc, day28, full = r["incremental"], r["28-day job"], r["full rebuild"]
        print(
            f"{r['profiles']:10,} {r['tasks']:5d} {r['state_mb']:8,.0f} {r['state_b_per_profile']:9,.0f} "
            f"{r['histories_mb']:12,.0f}  {inc['wall']:7.1f} {day28['wall']:8.1f} {full['wall']:9.1f}  "
            f"{inc['wall'] / day28['wall']:5.2f} / {inc['cpu'] / day28['cpu']:4.2f} "
            f"{full['wall'] / inc['wall']:6.2f} / {full['cpu'] / inc['cpu']:4.2f}  "
            f"{r['peak_incremental']:7,.0f} ({r['peak_rebuild']:,.0f})"
        )
    print(
        "28-day job and rebuild: each at its fastest task count. Peak RSS: the largest high-water mark of a task's "
        f"Python worker (a worker holds about {rows[-1]['rss_start']:,.0f} MB between tasks)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="100000", help="shop sizes, comma-separated (the issue: 250000,1000000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profiles-per-task", type=int, default=31_250, help="sets the task buckets of each size")
    parser.add_argument("--data-dir", type=Path, default=cached("histories"))
    parser.add_argument("--no-duckdb", action="store_true")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--spark-driver-memory", default="2g")
    parser.add_argument("--child", choices=["duckdb", "spark"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    sizes = [int(p) for p in args.profiles.split(",")]
    rows, raw = [], {}
    for profiles in sizes:
        buckets = task_buckets_for(profiles, args.profiles_per_task)
        data = generate(args.data_dir, profiles, HORIZON + 1, LAST_DAY, NUM_PROFILE_BUCKETS, HORIZON)
        out = args.data_dir / f"out-p{profiles}"
        if args.child == "spark":
            result = child_spark(data["files"], out, args.runs, buckets, args.spark_driver_memory)
            print("RESULT " + json.dumps(result))
            return
        if args.child == "duckdb":
            print("RESULT " + json.dumps(child_duckdb(data["files"], out / "duckdb", args.runs)))
            return
        own = ["--profiles", str(profiles), "--runs", str(args.runs), "--data-dir", str(args.data_dir)]
        own += ["--profiles-per-task", str(args.profiles_per_task), "--spark-driver-memory", args.spark_driver_memory]
        spark = _spawn([*own, "--child", "spark"])
        duck = None if args.no_duckdb else _spawn([*own, "--child", "duckdb"])
        rows.append(report(profiles, data, spark, duck))
        raw[profiles] = {"shop": data["shop"], "spark": spark, "duckdb": duck}
        shutil.rmtree(out, ignore_errors=True)
    summary(rows)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
