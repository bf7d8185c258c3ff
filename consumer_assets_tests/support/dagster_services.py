"""`dagster-webserver` and `dagster-daemon` on loopback, as a deployment runs them, with a GraphQL client.

Both load the code location of this checkout's workspace.yaml into one Dagster instance (a fresh
DAGSTER_HOME). Runs go through the queued run coordinator and the daemon, as in production.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import requests

from consumer_assets_tests.support.services import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Telemetry and the community pop-up off; the run queue polled every second rather than every 5 s.
DAGSTER_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""

DAEMONS = """{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"""
NEEDED_DAEMONS = {"BACKFILL", "QUEUED_RUN_COORDINATOR"}
LOCATIONS = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


@dataclass(frozen=True)
class DagsterServices:
    url: str
    home: Path
    logs: dict[str, Path]

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL answer; fails with the answer when it has errors."""
        answer = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        ).json()
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def log_tails(self, lines: int = 60) -> str:
        """The end of each process's log, for failure messages."""
        parts = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines() if path.exists() else ["(no log)"]
            parts.append(f"----- {name} ({path}), last {lines} lines -----\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)


@contextlib.contextmanager
def dagster_services(
    work_dir: Path, env: dict[str, str], timeout: float = 240, dagster_yaml: str = DAGSTER_YAML
) -> Iterator[DagsterServices]:
    """Start the webserver and the daemon on an instance of `dagster_yaml` (its {env: NAME} settings read
    from this process's environment here, from `env` and this environment in theirs), wait until the UI
    serves the code location and the daemons that launch backfills and queued runs report healthy; stop
    both (and what they spawned) on exit."""
    home = work_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(dagster_yaml)
    # Create and migrate the instance's storages once, here: the webserver, the daemon and
    # their code servers starting together would each try, and two of them can stamp the schema
    # version twice ("alembic_version has more than one head").
    with dg.DagsterInstance.from_config(str(home)):
        pass
    env = {
        **os.environ,
        **env,
        "DAGSTER_HOME": str(home),
        # The code server and the run workers import this checkout, whatever the venv points at.
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    port = free_port()
    services = DagsterServices(
        f"http://127.0.0.1:{port}", home, {"webserver": work_dir / "webserver.log", "daemon": work_dir / "daemon.log"}
    )
    commands = {
        "webserver": [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
    }
    started: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            with services.logs[name].open("wb") as out:
                # Each in its own process group: stopping it also stops its code server and run workers.
                started[name] = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )

        def ready() -> bool:
            for name, process in started.items():
                assert process.poll() is None, f"{name} exited with {process.returncode}\n{services.log_tails()}"
            try:
                if not requests.get(f"{services.url}/server_info", timeout=2).ok:
                    return False
                # The webserver answers before its code location has loaded.
                locations = services.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
                statuses = services.graphql(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
            except requests.RequestException:
                return False
            for entry in locations:
                loaded = entry["locationOrLoadError"]
                assert loaded is None or loaded["__typename"] != "PythonError", f"{entry}\n{services.log_tails()}"
            loaded = bool(locations) and all(entry["loadStatus"] == "LOADED" for entry in locations)
            healthy = {s["daemonType"] for s in statuses if s["healthy"]}
            return loaded and healthy >= NEEDED_DAEMONS

        try:
            wait_until(ready, timeout, "dagster-webserver and a healthy dagster-daemon")
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{services.log_tails()}") from None
        yield services
    finally:
        for process in started.values():
            stop_group(process)


def stop_group(process: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM to the process's group (it, its code server, the run workers it spawned); once it has
    exited (or after `timeout` seconds), SIGKILL to whatever of the group is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
