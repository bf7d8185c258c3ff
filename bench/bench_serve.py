"""The scoring service under load: real HTTP clients against `consumer-assets serve` on loopback.

    .venv/bin/python bench/bench_serve.py [--profiles 20000] [--requests 2000] [--clients 16] [--runs 3]
        [--workers 1] [--client-processes 4] [--data-dir data/bench/serve]

Storage with an approved (untrained) model of the default LstmConfig and a histories state of
--profiles profiles is built once per size (bench/serve_data.py, cached under --data-dir). The
service is started as the README starts it (with --workers processes), and timed from the process
start to its first healthy answer: once with no state cache (it reads the Parquet state and writes
its memory-mapped cache), then again with the cache (a restart, or a worker), which serves the load.
Each request is one profile of the state, drawn at random (seeded), with three new events of the
next day posted and `at` at its cut-off: the full path (validation, state lookup, advance, encode,
LSTM over the whole history, explanations).

Printed: start-up seconds; p50 / p99 latency with one client (sequential requests on one keep-alive
connection) and with --clients concurrent clients (threads, each with its own connection, spread
over --client-processes processes), and requests/s; the service's resident memory against
the state's size on disk (the Parquet files of consumer_histories_state, what the service is
given) and its cache's: VmRSS of the first process, its file-backed part (RssFile: shared
libraries, the cache's mapped ids and offsets), its peak (VmHWM), and with several workers the
sum of their proportional set sizes (Pss: shared pages counted once across them).
Latencies are the median over --runs runs (each run listed). The service's CPU time per request
(all its processes, from /proc) says what it would answer on cores of its own. The clients share
the machine's cores with the service, so the client is libcurl (pycurl: the HTTP client of curl,
C code that releases the GIL while it waits), whose CPU per request (printed) is a fraction of a
pure-Python client's; `--client python` uses the standard library's http.client instead, to
compare. The machine is shared with other work: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import io
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pycurl
from scratch import cached

HERE = Path(__file__).resolve().parent
DAY = dt.date(2026, 10, 30)
CUTOFF = "2026-11-01T00:00:00Z"  # of the day after the state's


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def storage(data_dir: Path, profiles: int) -> Path:
    root = (data_dir / f"profiles-{profiles}").resolve()
    if not (root / "consumer_histories" / "_delta_log").exists():
        subprocess.run([sys.executable, str(HERE / "serve_data.py"), root.as_uri(), "--profiles", str(profiles)],
                       env=env(), check=True)  # fmt: skip
    return root


def state_ids(root: Path, sample: int, seed: int) -> list[str]:
    import pyarrow.parquet as pq

    files = sorted((root / "consumer_histories_state").rglob("*.parquet"))
    ids = [i for f in files for i in pq.read_table(f, columns=["profile_id"])["profile_id"].to_pylist()]
    return random.Random(seed).sample(ids, min(sample, len(ids)))


def body(profile: str, k: int) -> bytes:
    events = [
        {"event_id": f"bench-{k}-{j}", "profile_id": profile, "session_id": f"s{k}",
         "ts": f"2026-10-31T1{j}:00:00.000Z", "event_type": "product_view", "article_id": f"a{j}", "brand_id": "b1",
         "category": "shoes", "price": 59.9}
        for j in range(3)
    ]  # fmt: skip
    return json.dumps({"profile_id": profile, "events": events, "at": CUTOFF}).encode()


def client(port: int, bodies: list[bytes], latencies: list[float], errors: list[int], kind: str = "curl") -> None:
    """Post `bodies` one after another on one keep-alive connection: their latencies, statuses but 200."""
    if kind == "python":
        conn = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"content-type": "application/json"}
        for b in bodies:
            started = time.perf_counter()
            conn.request("POST", "/v1/score", b, headers)
            status = response_of(conn)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
        conn.close()
        return
    curl, sink = pycurl.Curl(), io.BytesIO()
    curl.setopt(pycurl.URL, f"http://127.0.0.1:{port}/v1/score")
    curl.setopt(pycurl.HTTPHEADER, ["content-type: application/json", "Expect:"])  # no 100-continue round trip
    curl.setopt(pycurl.WRITEFUNCTION, sink.write)
    for b in bodies:
        started = time.perf_counter()
        curl.setopt(pycurl.POSTFIELDS, b)
        curl.perform()
        latencies.append(time.perf_counter() - started)
        status = curl.getinfo(pycurl.RESPONSE_CODE)
        if status != 200:
            errors.append(status)
        sink.seek(0)
        sink.truncate()
    curl.close()


def response_of(conn: http.client.HTTPConnection) -> int:
    r = conn.getresponse()
    r.read()
    return r.status


def _threads(port: int, parts: list[list[bytes]], kind: str) -> tuple[list[float], list[int], float]:
    """One client per part, each a thread with its own connection: their latencies, error statuses and
    the CPU seconds this process spent."""
    latencies: list[float] = []
    errors: list[int] = []
    before = os.times()
    threads = [threading.Thread(target=client, args=(port, p, latencies, errors, kind)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.times()
    return latencies, errors, after.user + after.system - before.user - before.system


def _process(port: int, parts: list[list[bytes]], kind: str, go: Any, out: Any) -> None:
    go.wait()
    out.send(_threads(port, parts, kind))


def run(
    port: int, bodies: list[bytes], clients: int, processes: int = 1, kind: str = "curl"
) -> tuple[list[float], float, list[int], float]:
    """The bodies posted by `clients` concurrent clients (threads, spread over `processes` processes so
    that the clients' own Python does not queue for one GIL): latencies, wall seconds, error statuses,
    the clients' CPU seconds."""
    per = [bodies[i::clients] for i in range(clients)]
    processes = max(1, min(processes, clients))
    if processes == 1:
        started = time.perf_counter()
        latencies, errors, cpu = _threads(port, per, kind)
        return latencies, time.perf_counter() - started, errors, cpu
    context = multiprocessing.get_context("fork")
    go = context.Event()
    pipes = [context.Pipe(duplex=False) for _ in range(processes)]
    workers = [
        context.Process(target=_process, args=(port, per[i::processes], kind, go, pipes[i][1]), daemon=True)
        for i in range(processes)
    ]
    for w in workers:
        w.start()
    started = time.perf_counter()
    go.set()
    results = [receiver.recv() for receiver, _ in pipes]
    wall = time.perf_counter() - started
    for w in workers:
        w.join()
    latencies = [x for lat, _, _ in results for x in lat]
    return latencies, wall, [e for _, err, _ in results for e in err], sum(cpu for _, _, cpu in results)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def memory(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def pss(pids: list[int]) -> int:
    """The processes' proportional set size, summed: pages shared by several counted once in all."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def start(root: Path, cache: Path, workers: int, log: Path) -> tuple[subprocess.Popen, int, float]:
    """The service on a free port, once it answers: (process, port, seconds from its start)."""
    port = free_port()
    command = [sys.executable, "-c", "from consumer_assets.cli import main; main()", "serve", "--port", str(port),
               "--storage", root.as_uri(), "--cache", str(cache), "--workers", str(workers)]  # fmt: skip
    started = time.perf_counter()
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env(), stdout=out, stderr=out, start_new_session=True)
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the service exited: {log.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/v1/health")
            if response_of(conn) == 200:
                return server, port, time.perf_counter() - started
        except OSError:
            time.sleep(0.05)


def ready(log: Path, workers: int) -> None:
    """Wait (up to 2 minutes) until each of the service's `workers` processes has started answering."""
    deadline = time.monotonic() + 120
    while log.read_text().count("Application startup complete") < workers and time.monotonic() < deadline:
        time.sleep(0.05)


def stop(server: subprocess.Popen, log: Path, workers: int) -> None:
    """Stop the service once every worker has started (a signal amid a worker's start-up is a case
    of its own, which the bench does not measure); killed, with a warning, if it has not ended
    30 s after SIGTERM."""
    ready(log, workers)
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print(f"warning: the service had not stopped 30 s after SIGTERM; killed. Its log:\n{log.read_text()[-2000:]}",
              file=sys.stderr)  # fmt: skip
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def cache_bytes(cache: Path) -> int:
    return sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--client-processes", type=int, default=2, help="processes the concurrent clients run in")
    parser.add_argument("--client", choices=["curl", "python"], default="curl", help="libcurl, or http.client")
    parser.add_argument("--data-dir", type=Path, default=cached("serve"))
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    root = storage(args.data_dir, args.profiles)
    on_disk = sum(f.stat().st_size for f in (root / "consumer_histories_state").rglob("*.parquet"))
    cache = root.parent / f"cache-{args.profiles}"
    shutil.rmtree(cache, ignore_errors=True)
    log = root.parent / f"serve-{args.profiles}.log"
    server, _, cold = start(root, cache, args.workers, log)
    cold_rss = memory(server.pid)
    stop(server, log, args.workers)
    server, port, startup = start(root, cache, args.workers, log)
    try:
        ready(log, args.workers)  # every worker answering, not only the first
        rss_loaded = memory(server.pid)
        ids = state_ids(root, args.requests, seed=1)
        bodies = [body(p, k) for k, p in enumerate(ids)]
        run(port, bodies[:100], 1, kind=args.client)  # warm-up: the LSTM's kernels for the lengths seen
        single, multi = [], []
        pids = workers_of(server.pid)
        for r in range(args.runs):
            cpu = cpu_seconds(pids)
            lat, wall, errors, client_cpu = run(port, bodies, 1, kind=args.client)
            single.append((quantile(lat, 0.5), quantile(lat, 0.99), len(lat) / wall, errors,
                           (cpu_seconds(pids) - cpu) / len(lat), client_cpu / len(lat)))  # fmt: skip
            cpu = cpu_seconds(pids)
            lat, wall, errors, client_cpu = run(port, bodies, args.clients, args.client_processes, args.client)
            multi.append((quantile(lat, 0.5), quantile(lat, 0.99), len(lat) / wall, errors,
                          (cpu_seconds(pids) - cpu) / len(lat), client_cpu / len(lat)))  # fmt: skip
            print(f"run {r + 1}: 1 client p50 {single[-1][0] * 1e3:.2f} ms p99 {single[-1][1] * 1e3:.2f} ms "
                  f"{single[-1][2]:,.0f} req/s; {args.clients} clients p50 {multi[-1][0] * 1e3:.2f} ms "
                  f"p99 {multi[-1][1] * 1e3:.2f} ms {multi[-1][2]:,.0f} req/s; "
                  f"errors {len(single[-1][3]) + len(multi[-1][3])}")  # fmt: skip
        rss = memory(server.pid)
        shared = pss(workers_of(server.pid))
    finally:
        stop(server, log, args.workers)

    def med(rows: list[tuple], i: int) -> float:
        return statistics.median(row[i] for row in rows)

    print(f"profiles {args.profiles:,}, {args.requests:,} requests a run, {args.runs} runs (medians)")
    print(f"start-up {cold:.2f} s building the state cache (peak RSS {cold_rss['VmHWM'] / 1e6:,.0f} MB), "
          f"{startup:.2f} s with it (process start to the first healthy answer), {args.workers} worker(s)")  # fmt: skip
    print(f"1 client:  p50 {med(single, 0) * 1e3:.2f} ms  p99 {med(single, 1) * 1e3:.2f} ms  "
          f"{med(single, 2):,.0f} requests/s  (service CPU {med(single, 4) * 1e3:.2f} ms a request)")  # fmt: skip
    print(f"{args.clients} clients: p50 {med(multi, 0) * 1e3:.2f} ms  p99 {med(multi, 1) * 1e3:.2f} ms  "
          f"{med(multi, 2):,.0f} requests/s  (service CPU {med(multi, 4) * 1e3:.2f} ms a request: "
          f"{1 / med(multi, 4):,.0f} requests/s per core it has to itself; the clients' CPU "
          f"{med(multi, 5) * 1e3:.2f} ms a request, {args.client})")  # fmt: skip
    print(f"resident memory {rss['VmRSS'] / 1e6:,.0f} MB, of it file-backed {rss['RssFile'] / 1e6:,.0f} MB "
          f"(after loading {rss_loaded['VmRSS'] / 1e6:,.0f} MB, peak {rss['VmHWM'] / 1e6:,.0f} MB); "
          f"all workers' PSS {shared / 1e6:,.0f} MB; state on disk {on_disk / 1e6:,.0f} MB (Parquet), "
          f"its cache {cache_bytes(cache) / 1e6:,.0f} MB: RSS / state on disk {rss['VmRSS'] / on_disk:.2f}x, "
          f"PSS / state on disk {shared / on_disk:.2f}x")  # fmt: skip
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
