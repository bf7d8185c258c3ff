"""The image without Docker: the Dockerfile lints clean, its torch build follows the variant asked
for, and its command, run as the image's unprivileged user with the image's environment, serves the
code location over gRPC and writes only into the data dir, as that user."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._grpc.client import DagsterGrpcClient
from dagster._grpc.types import ListRepositoriesResponse
from dagster._serdes import deserialize_value

from consumer_assets.settings import DAGSTER_YAML
from consumer_assets_tests.support.dockerfile import Stage, final_stage, option, with_option
from consumer_assets_tests.support.services import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BIN = Path(sys.executable).parent
# The python base image's own environment, with this interpreter's bin where the image has
# /usr/local/bin: the `dagster` and `consumer-assets` the image's commands name are found there.
BASE_ENV = {"PATH": f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
ASSETS = {
    "raw_events",
    "raw_events_quarantine",
    "consumer_histories",
    "consumer_histories_state",
    "trained_lstm_model",
    "predictions",
    "prediction_quality",
}


def hadolint(dockerfile: Path, cwd: Path) -> list[dict]:
    """hadolint's findings, every level down to style, inline ignore pragmas disregarded, no config
    file picked up from the checkout or a home folder."""
    done = subprocess.run(
        [
            str(BIN / "hadolint"),
            "--format=json",
            "--failure-threshold=style",
            "--disable-ignore-pragma",
            str(dockerfile),
        ],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.startswith("["), done.stdout + done.stderr
    findings = json.loads(done.stdout)
    assert (done.returncode == 0) == (findings == []), done.stderr
    return findings


def test_hadolint_reports_faults_here(tmp_path: Path) -> None:
    # An empty report below means a clean Dockerfile only if the linter does find faults where there are some.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n# hadolint ignore=DL3042\nRUN pip install click\n")
    assert {"DL3006", "DL3013", "DL3042"} <= {f["code"] for f in hadolint(bad, tmp_path)}


@pytest.mark.parametrize("dockerfile", sorted(ROOT.glob("Dockerfile*")), ids=lambda p: p.name)
def test_dockerfile_has_no_hadolint_findings(dockerfile: Path, tmp_path: Path) -> None:
    assert hadolint(dockerfile, tmp_path) == []


def test_docker_lines_of_the_docs_are_the_image_header() -> None:
    # The Dockerfile's "# Build: docker build ..." and "# Run: docker run ..." lines.
    header = re.findall(r"^# \w+:\s+(docker .*)$", DOCKERFILE.read_text(), re.M)
    assert [line.split()[:2] for line in header] == [["docker", "build"], ["docker", "run"]]
    for doc in (ROOT / "README.md", ROOT / "docs" / "deploy" / "README.md"):
        lines = [line.split("#")[0].strip() for line in doc.read_text().splitlines() if line.startswith("docker ")]
        # The image's own command; the scoring service's line runs another (consumer-assets serve).
        own = [line for line in lines if line.startswith(("docker build -t", "docker run -p")) and " serve" not in line]
        assert header == own, doc
    published = re.search(r"-p 127\.0\.0\.1:\d+:(\d+) ", header[1]).group(1)
    assert [published] == final_stage(DOCKERFILE, BASE_ENV).exposed


def torch_pin_step(stage: Stage) -> str:
    """The shell commands of the install step that pin torch's build, before pip runs."""
    install = next(run for run in stage.runs if "pip install" in run)
    assert "https://download.pytorch.org/whl/${TORCH_VARIANT}" in install and "-c constraints.txt" in install
    return install[install.index("sed ") : install.index("&& pip install")]


@pytest.mark.parametrize("variant", ["cpu", "cu130"])
def test_torch_build_follows_the_variant(variant: str, tmp_path: Path) -> None:
    stage = final_stage(DOCKERFILE, BASE_ENV)
    assert stage.args["TORCH_VARIANT"] == "cpu"  # CPU torch unless the GPU variant is asked for
    constraints = (ROOT / "constraints.txt").read_text()
    (tmp_path / "constraints.txt").write_text(constraints)
    step = torch_pin_step(stage)
    done = subprocess.run(["sh", "-c", step], cwd=tmp_path, env={**BASE_ENV, "TORCH_VARIANT": variant})
    assert done.returncode == 0
    pinned = (tmp_path / "constraints.txt").read_text().splitlines()
    release = re.search(r"^torch==([^+\n]+)\+cpu$", constraints, re.M).group(1)
    assert [p for p in pinned if p.startswith("torch==")] == [f"torch=={release}+{variant}"]
    assert [p for p in pinned if not p.startswith("torch==")] == [
        c for c in constraints.splitlines() if not c.startswith("torch==")
    ]

    # A constraints file whose torch pin is not the CPU build's fails the step instead of installing
    # some other build.
    (tmp_path / "constraints.txt").write_text(constraints.replace(f"torch=={release}+cpu", f"torch=={release}"))
    assert subprocess.run(["sh", "-c", step], cwd=tmp_path, env={**BASE_ENV, "TORCH_VARIANT": variant}).returncode


def out_of_reach(path: Path) -> bool:
    """Whether a folder on the way to `path` keeps out a user who is neither its owner nor in its group."""
    return any(not p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents] if p.is_dir())


def as_user(argv: list[str], uid: int, gid: int) -> list[str]:
    """`argv` run with the image's uid and gid and no supplementary groups, when we are root to switch.

    The interpreter of a pyenv install under /root (mode 0700), as on this project's machines, is out
    of an unprivileged user's reach, where the image has it in /usr/local. The user then keeps one
    capability, CAP_DAC_READ_SEARCH: it reads and searches folders as the image's user reads the
    image's root-owned files, while every write is still checked as that uid's.
    """
    if os.geteuid() != 0:
        return argv
    reach = [sys.base_prefix, sys.prefix, ROOT]
    read_search = (
        ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
        if any(out_of_reach(Path(p).resolve()) for p in reach)
        else []
    )
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *read_search, "--", *argv]


def fresh_signals() -> None:
    """A container's first process starts with default signal handling, whatever ours inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def proc_uids(pid: int) -> list[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return [int(u) for u in re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()]


@pytest.mark.slow
def test_image_command_serves_the_code_location_as_its_user(tmp_path: Path) -> None:
    stage = final_stage(DOCKERFILE, BASE_ENV)
    # What the image runs, as whom, on which port.
    assert stage.user is not None and re.fullmatch(r"[1-9]\d*:[1-9]\d*", stage.user), stage.user
    image_uid, image_gid = (int(part) for part in stage.user.split(":"))
    assert stage.cmd[:3] == ["dagster", "api", "grpc"], stage.cmd
    assert option(stage.cmd, "-m") == "consumer_assets.definitions"
    assert option(stage.cmd, "-h") == "0.0.0.0"
    assert [option(stage.cmd, "-p")] == stage.exposed == [option(stage.healthcheck, "-p")]
    image_data = stage.env["CONSUMER_ASSETS_DATA_DIR"]
    assert stage.env["DAGSTER_HOME"].startswith(image_data + "/")
    user_home = re.search(r"useradd .*--home-dir (\S+)", " ".join(stage.runs)).group(1)

    # The image's user, and a data dir of its own where it can reach it (pytest's tmp_path is 0700).
    if os.geteuid() == 0:
        uid, gid = image_uid, image_gid
        data = Path(tempfile.mkdtemp(prefix="consumer-assets-image-"))
        os.chown(data, uid, gid)
        assert not out_of_reach(data.parent)
    else:
        uid, gid = os.getuid(), os.getgid()  # already unprivileged: run as ourselves
        data = tmp_path / "data"
        data.mkdir()

    # The image's environment with the data dir re-rooted; HOME is what Docker takes from the user's
    # passwd entry; the checkout's code is the installed one. Nothing else of ours leaks in.
    env = {name: value.replace(image_data, str(data)) for name, value in stage.env.items()}
    env["HOME"] = user_home.replace(image_data, str(data))
    env["PYTHONPATH"] = str(ROOT)
    port = free_port()
    command = with_option(with_option(stage.cmd, "-h", "127.0.0.1"), "-p", str(port))
    health = as_user(with_option(stage.healthcheck, "-p", str(port)), uid, gid)
    log_path = tmp_path / "server.log"

    with log_path.open("wb") as log:
        server = subprocess.Popen(
            as_user([*stage.entrypoint, *command], uid, gid),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=fresh_signals,
            start_new_session=True,  # its own process group: nothing it starts outlives the test
        )
    try:

        def healthy() -> bool:
            assert server.poll() is None, log_path.read_text()
            done = subprocess.run(health, cwd=ROOT, env=env, capture_output=True, timeout=120)
            return done.returncode == 0

        # The image's own HEALTHCHECK command answers once the code location has loaded.
        wait_until(healthy, 240, "the code server's health check")

        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        listed = deserialize_value(client.list_repositories())
        assert isinstance(listed, ListRepositoriesResponse), listed
        names = [symbol.repository_name for symbol in listed.repository_symbols]
        assert names == ["__repository__"]
        origin = GrpcServerCodeLocationOrigin(port=port, host="127.0.0.1", location_name="consumer_assets")
        snap = deserialize_value(client.external_repository(RemoteRepositoryOrigin(origin, names[0])))
        nodes = {node.asset_key.to_user_string(): node for node in snap.asset_nodes}
        assert set(nodes) == ASSETS, getattr(snap, "error", snap)
        assert nodes["trained_lstm_model"].pools == {"gpu"}  # what the production dagster.yaml limits

        # The entrypoint's shell replaced itself (exec): the process we started is the server's
        # interpreter, running as the user, so a stop signal reaches the server.
        assert Path(f"/proc/{server.pid}/exe").resolve() == Path(sys.executable).resolve()
        assert proc_uids(server.pid) == [uid] * 4

        # It wrote its Dagster home into the data dir (telemetry off), all of it as the user.
        home = Path(env["DAGSTER_HOME"])
        written = yaml.safe_load((home / "dagster.yaml").read_text())
        assert written == yaml.safe_load(DAGSTER_YAML) and written["telemetry"] == {"enabled": False}
        written = [data, *data.rglob("*")]
        assert len(written) > 2
        assert {path.lstat().st_uid for path in written} == {uid}, [
            (str(p), p.lstat().st_uid) for p in written if p.lstat().st_uid != uid
        ]

        # SIGTERM (docker stop, a pod's termination) reaches the server, which stops.
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        if os.geteuid() == 0:
            shutil.rmtree(data, ignore_errors=True)
