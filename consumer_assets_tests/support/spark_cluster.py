"""A Spark standalone cluster (one master, one worker) on loopback, started with pyspark's own scripts."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyspark
import requests

from consumer_assets_tests.support.services import free_port, wait_until

SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"
# The daemons start with SIGTERM and SIGINT at their defaults: a JVM keeps a signal ignored that it
# inherited ignored, and an in-process Dagster run maps SIGTERM to SIGINT's handler, which is "ignore"
# in a test process started in the background; terminate() would then leave the daemons running.
DAEMON = ["env", "--default-signal=TERM,INT", str(SPARK_CLASS)]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def standalone_cluster(
    work_dir: Path, cores: int = 2, memory: str = "2g", workers: int = 1, worker_processes: list | None = None
) -> Iterator[str]:
    """Yields the master URL; on exit stops workers and master and waits until their ports close.

    Each worker runs in its own process group (its executors and Python workers included), so a test
    can kill one like a machine going away; `worker_processes` receives their Popen objects.
    """
    port, ui = free_port(), free_port()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    logs = work_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    master_url = f"spark://127.0.0.1:{port}"
    started: list[subprocess.Popen] = []
    try:
        with (logs / "master.log").open("wb") as out:
            started.append(
                subprocess.Popen(
                    [*DAEMON, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(port), "--webui-port", str(ui)],
                    env=env, stdout=out, stderr=out,
                )
            )  # fmt: skip
        for n in range(workers):
            with (logs / f"worker{n}.log").open("wb") as out:
                started.append(
                    subprocess.Popen(
                        [*DAEMON, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                         "--webui-port", str(free_port()), "--cores", str(cores), "--memory", memory,
                         "--work-dir", str(work_dir / f"work{n}"), master_url],
                        env=env, stdout=out, stderr=out, start_new_session=True,
                    )
                )  # fmt: skip
        if worker_processes is not None:
            worker_processes.extend(started[1:])

        def worker_registered() -> bool:
            for process in started:
                if process.poll() is not None:  # before any test could have killed one
                    raise RuntimeError(f"a Spark daemon exited early; see {logs}")
            try:
                alive = requests.get(f"http://127.0.0.1:{ui}/json/", timeout=2).json().get("aliveworkers", 0)
                return alive >= workers
            except (requests.RequestException, ValueError):
                return False

        wait_until(worker_registered, 120, "the Spark workers to register with the master")
        yield master_url
    finally:
        for process in reversed(started):
            if process.poll() is None:
                process.terminate()
        for process in started:
            process.wait(timeout=60)
        wait_until(lambda: not port_open(port), 30, "the Spark master port to close")
