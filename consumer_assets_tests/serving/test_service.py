"""The scoring service through real HTTP against `consumer-assets serve` on a loopback port: the batch
predictions' probabilities and explanations for every profile of two simulated days, the errors, live swaps
of model and histories day under load, metrics and JSON logs."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import requests

from consumer_assets.histories.schema import MS_PER_DAY, STATE_SCHEMA, cutoff_ms
from consumer_assets.histories.state import State
from consumer_assets.service.app import MAX_BODY_BYTES
from consumer_assets.serving.lookup import load_state
from consumer_assets.serving.posted import instant_text, landing_lines
from consumer_assets.storage.artifacts import ArtifactStore
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import TableStore
from consumer_assets_tests.support.served_shop import HORIZON, ServedShop, replay_commits, served_shop
from consumer_assets_tests.support.services import free_port, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ServedShop:
    return served_shop(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state cache all of the module's services share: each day's is built once."""
    return tmp_path_factory.mktemp("serve-cache")


@contextmanager
def serving(storage: str, log: Path, cache: Path, *args: str, poll_seconds: float = 30.0) -> Iterator[str]:
    """`consumer-assets serve` in its own process on a free loopback port, until the block ends."""
    port = free_port()
    env = {
        **os.environ,
        "CONSUMER_ASSETS_SERVE_POLL_SECONDS": str(poll_seconds),
        "CONSUMER_ASSETS_SERVE_CACHE": str(cache),
    }
    command = [sys.executable, "-c", "from consumer_assets.cli import main; main()", "serve"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "--port", str(port), "--storage", storage, *args], stdout=out, stderr=out, env=env
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if server.poll() is not None:
            raise RuntimeError(f"the service exited with {server.returncode}: {log.read_text()}")
        try:
            return requests.get(f"{url}/v1/health", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_until(up, 60, "the scoring service")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def at(day: dt.date) -> str:
    """The cut-off of `day` as the ISO instant a client posts."""
    return instant_text(cutoff_ms(day))


def same_as_batch(answer: dict, row: dict) -> None:
    assert answer["probability"] == pytest.approx(row["probability"], abs=1e-5), answer["profile_id"]
    got, want = answer["explanations"], row["explanations"]
    assert [(e["position"], e["event_type"], e["article_bucket"]) for e in got] == [
        (e["position"], e["event_type"], e["article_bucket"]) for e in want
    ]
    assert [e["change"] for e in got] == pytest.approx([e["change"] for e in want], abs=1e-5)
    assert [e["hours_before_cutoff"] for e in got] == pytest.approx([e["hours_before_cutoff"] for e in want], abs=1e-3)


def test_the_state_cache_is_built_once_and_holds_the_committed_state(shop: ServedShop, tmp_path: Path) -> None:
    day, _ = shop.days
    store = TableStore.at(shop.root)
    built = load_state(store, day, tmp_path)
    again = load_state(store, day, tmp_path)
    assert (built.built, again.built) == (True, False) and again.folder == built.folder
    # Every profile's row read from the cache is its row in the committed Parquet state, field by field.
    table = store.read("consumer_histories_state", [day])
    table = table.drop_columns([c for c in table.column_names if c not in STATE_SCHEMA.names])
    want = State.from_table(table.take(pc.sort_indices(table["profile_id"])), day, HORIZON)
    got = again.rows(want.profile_ids.to_pylist())
    assert again.profiles == len(want) and got.profile_ids.equals(want.profile_ids)
    assert np.array_equal(got.event_offsets, want.event_offsets) and np.array_equal(got.day_offsets, want.day_offsets)
    for name, values in [*want.events.items(), *want.days.items()]:
        mine = got.events.get(name, got.days.get(name))
        assert mine.dtype == values.dtype and np.array_equal(mine, values), name
    assert again.rows(["nobody", want.profile_ids[0].as_py() + "x"]).profile_ids.to_pylist() == []


def ask_all(url: str, bodies: list[dict]) -> list[dict]:
    """The answers to `bodies`, posted by CLIENTS concurrent clients (so the service scores them in batches)."""
    local = threading.local()

    def post(body: dict) -> dict:
        if not hasattr(local, "http"):
            local.http = requests.Session()
        response = local.http.post(f"{url}/v1/score", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(post, bodies))


CLIENTS = 8


def test_every_profile_gets_the_batch_prediction_over_http(shop: ServedShop, tmp_path: Path, cache: Path) -> None:
    day, next_day = shop.days
    store = TableStore.at(shop.root)
    with serving(shop.root, tmp_path / "serve.log", cache, "--day", str(day)) as url:
        health = requests.get(f"{url}/v1/health").json()
        state_profiles = health["profiles"]
        assert health == {"model_version": f"{day}/v1", "histories_day": str(day), "profiles": state_profiles}

        # No events, at D's cut-off: predictions[D], for every profile it scored.
        batch = {r["profile_id"]: r for r in store.read("predictions", [day]).to_pylist()}
        assert 500 < len(batch) < state_profiles
        answers = ask_all(url, [{"profile_id": p, "events": [], "at": at(day)} for p in batch])
        asked = len(answers)
        for answer, (profile, row) in zip(answers, batch.items(), strict=True):
            assert (answer["profile_id"], answer["model_version"], answer["histories_day"]) == (
                profile, f"{day}/v1", str(day)
            )  # fmt: skip
            same_as_batch(answer, row)

        # Each profile's raw events of D+1, at D+1's cut-off: predictions[D+1], eligible exactly where it is.
        raw = store.read("raw_events", [next_day])
        batch = {r["profile_id"]: r for r in store.read("predictions", [next_day]).to_pylist()}
        state_ids = TableStore.at(shop.root).read("consumer_histories_state", [day], columns=["profile_id"])
        profiles = sorted(set(raw["profile_id"].to_pylist()) | set(state_ids["profile_id"].to_pylist()))
        events: dict[str, list[dict]] = {p: [] for p in profiles}
        for event in landing_lines(raw):
            events[event["profile_id"]].append(event)
        answers = ask_all(url, [{"profile_id": p, "events": events[p], "at": at(next_day)} for p in profiles])
        asked += len(answers)
        eligible = set()
        for profile, answer in zip(profiles, answers, strict=True):
            assert answer["profile_id"] == profile
            if answer["probability"] is None:
                assert answer["reason"].startswith("not eligible: ") and answer["explanations"] == []
            else:
                eligible.add(profile)
                same_as_batch(answer, batch[profile])
        assert eligible == set(batch)
        assert len(profiles) > len(batch) > 500
        metrics = requests.get(f"{url}/metrics").text
    # Concurrent requests were scored together.
    asks = int(re.search(r"^consumer_assets_serve_batched_asks_total (\d+)$", metrics, re.M).group(1))
    batches = int(re.search(r"^consumer_assets_serve_batches_total (\d+)$", metrics, re.M).group(1))
    assert asks == asked and batches < asks


def test_errors_metrics_and_logs(shop: ServedShop, tmp_path: Path, cache: Path) -> None:
    day, next_day = shop.days
    store = TableStore.at(shop.root)
    raw = store.read("raw_events", [next_day])
    profile = raw["profile_id"][0].as_py()
    # The profile's events of D+1 as if a day later: events after the state of D+1 the service serves.
    events = [
        {**e, "ts": instant_text(int(dt.datetime.fromisoformat(e["ts"]).timestamp() * 1000) + MS_PER_DAY)}
        for e in landing_lines(raw.filter(pc.equal(raw["profile_id"], profile)))
    ]
    log = tmp_path / "serve.log"
    with serving(shop.root, log, cache) as url:
        # The latest committed day by default.
        assert requests.get(f"{url}/v1/health").json()["histories_day"] == str(next_day)
        score = f"{url}/v1/score"

        def post(body: object) -> requests.Response:
            return requests.post(score, json=body)

        bad = requests.post(score, data=b'{"profile_id": ', headers={"content-type": "application/json"})
        assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
        assert post(["a list"]).status_code == 400
        assert post({"events": []}).status_code == 400
        assert "time zone" in post({"profile_id": "p", "at": "2026-05-22T10:00:00"}).json()["error"]
        huge = requests.post(score, data=b" " * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"})
        assert huge.status_code == 413

        # Invalid events: 422 with the quarantine's reasons, each naming its event.
        late = at(next_day + dt.timedelta(days=1))
        wrong = [
            {**events[0], "event_type": "teleport"},
            {**events[0], "event_id": "x1", "ts": instant_text(cutoff_ms(next_day) - 1)},  # before the state's cut-off
            {k: v for k, v in events[0].items() if k != "session_id"},
            {**events[0], "event_id": "x2", "profile_id": "someone else"},
            {**events[0], "event_id": "x3", "price": -1},
            "not an object",
        ]
        refused = post({"profile_id": profile, "events": [*events, *wrong], "at": late})
        assert refused.status_code == 422
        problems = [(p["index"] - len(events), p["reason"]) for p in refused.json()["problems"]]
        assert problems == [
            (0, "unknown_event_type"),
            (1, "timestamp_outside_day"),
            (2, "missing_field"),
            (3, "wrong_profile"),
            (4, "invalid_value"),
            (5, "not_an_object"),
        ]
        twice = post({"profile_id": profile, "events": [events[0], events[0]], "at": late}).json()["problems"]
        assert [p["reason"] for p in twice] == ["duplicate_event_id"]
        early = post({"profile_id": profile, "events": [], "at": at(day)})
        assert early.status_code == 422 and early.json()["reason"] == "at_before_cutoff"

        # A stranger with no events is not eligible; one with events is scored at any instant after the cut-off.
        stranger = post({"profile_id": "nobody", "events": []}).json()
        assert stranger["probability"] is None and "0 event(s)" in stranger["reason"]
        mid_day = post({"profile_id": profile, "events": [], "at": "2026-05-22T13:30:00+02:00"}).json()
        assert mid_day["histories_day"] == str(next_day)

        # Paths and methods the service has not: 404 and 405 (with the method it takes).
        assert requests.get(f"{url}/v2/score").status_code == 404
        wrong_method = requests.get(score)
        assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"

        metrics = requests.get(f"{url}/metrics").text
    assert 'consumer_assets_serve_requests_total{route="other",status="404"} 1' in metrics
    assert 'consumer_assets_serve_requests_total{route="/v1/score",status="405"} 1' in metrics
    assert 'consumer_assets_serve_requests_total{route="/v1/score",status="422"} 3' in metrics
    assert 'consumer_assets_serve_requests_total{route="/v1/score",status="400"} 4' in metrics
    assert 'consumer_assets_serve_errors_total{route="/v1/score",kind="client"} 9' in metrics
    assert 'consumer_assets_serve_request_seconds_count{route="/v1/score"} 11' in metrics
    assert f'consumer_assets_serve_info{{model_version="{day}/v1",histories_day="{next_day}"}} 1' in metrics
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    loaded = next(line for line in lines if line["message"] == "loaded")
    assert loaded["histories_day"] == str(next_day) and loaded["level"] == "info"
    assert any(line["message"] == "invalid events" and line["status"] == 422 for line in lines)


def test_a_newer_model_and_day_are_swapped_in_without_failing_a_request(
    shop: ServedShop, tmp_path: Path, cache: Path
) -> None:
    """With two worker processes: each swaps on its own, and every answer names what computed it."""
    day, next_day = shop.days
    storage = tmp_path / "storage"
    shutil.copytree(shop.before, storage)
    root = storage.resolve().as_uri()
    profile = TableStore.at(shop.root).read("predictions", [next_day])["profile_id"][0].as_py()
    answers: list[tuple[int, str | None, str | None, float | None]] = []
    done = threading.Event()

    with serving(root, tmp_path / "serve.log", cache, "--workers", "2", poll_seconds=0.2) as url:
        assert requests.get(f"{url}/v1/health").json()["histories_day"] == str(day)

        def everywhere(model: str, served: dt.date) -> bool:
            """Whether 10 new connections, which either worker may accept, all answer with `model` and `served`."""
            seen = {(h["model_version"], h["histories_day"]) for h in (requests.get(f"{url}/v1/health").json()
                                                                       for _ in range(10))}  # fmt: skip
            return seen == {(model, str(served))}

        def client() -> None:
            with requests.Session() as http:
                while not done.is_set():
                    r = http.post(f"{url}/v1/score", json={"profile_id": profile, "events": [], "at": at(next_day)})
                    body = r.json() if r.status_code == 200 else {}
                    answers.append((r.status_code, body.get("model_version"), body.get("histories_day"),
                                    body.get("probability")))  # fmt: skip

        thread = threading.Thread(target=client)
        thread.start()
        try:
            # A newer model approved: the same weights published as the model of D+1.
            registry = ModelRegistry(ArtifactStore(TableStore.at(root).location), "trained_lstm_model")
            old = registry.require_in_force(day)
            version = registry.publish(next_day, registry.load(old.version), {"note": "republished for the test"})
            registry.approve(version, {"copied": {"passed": True}})
            wait_until(lambda: everywhere(f"{next_day}/v1", day), 60, "the newer model in both workers")
            # A newer day committed: the state first, then the histories naming it, as consumer_histories does.
            replay_commits(Path(shop.root.removeprefix("file://")), storage, ["consumer_histories_state",
                           "consumer_histories"])  # fmt: skip
            wait_until(lambda: everywhere(f"{next_day}/v1", next_day), 60, "the newer histories day in both workers")
            # The client's connection stays with one worker, which the 10 health connections may all
            # have missed: its own answers say when that worker has swapped too.
            newest = (f"{next_day}/v1", str(next_day))
            wait_until(lambda: bool(answers) and answers[-1][1:3] == newest, 60, "the client's worker on the newer day")
            seen = len(answers)
            wait_until(lambda: len(answers) > seen + 5, 60, "answers after the swaps")
        finally:
            done.set()
            thread.join(timeout=60)
        metrics = requests.get(f"{url}/metrics").text
    assert {status for status, *_ in answers} == {200}
    used = [(model, served) for _, model, served, _ in answers]
    assert used[0] == (f"{day}/v1", str(day)) and used[-1] == (f"{next_day}/v1", str(next_day))
    # Each answer names what computed it; with D+1's state, no events at its cut-off is predictions[D+1].
    expected = TableStore.at(shop.root).read("predictions", [next_day])
    want = expected.filter(pc.equal(expected["profile_id"], profile))["probability"][0].as_py()
    assert all(p == pytest.approx(want, abs=1e-5) for _, _, served, p in answers if served == str(next_day))
    assert "consumer_assets_serve_swaps_total 2" in metrics


def test_the_readme_starts_the_service_and_scores_with_curl(shop: ServedShop, tmp_path: Path, cache: Path) -> None:
    """The README's commands as written, but for the shop's days and a free port, with its storage as the default."""
    from consumer_assets_tests.test_readme import readme_commands

    day, next_day = shop.days
    port = free_port()
    bin_dir = Path(sys.executable).parent

    def as_here(command: str) -> str:
        command = command.replace(".venv/bin/", f"{bin_dir}/").replace(":8000", f":{port}")
        command = command.replace("consumer-assets serve", f"consumer-assets serve --port {port}")
        return command.replace("2026-11-10", str(day)).replace("2026-11-11", str(next_day + dt.timedelta(days=1)))

    commands = [c for c in readme_commands() if "consumer-assets serve" in c or c.startswith(("curl -s 127", "P=$("))]
    serve, *asking = commands
    assert serve.endswith("&") and len(asking) == 3
    env = {**os.environ, "CONSUMER_ASSETS_STORAGE": shop.root, "CONSUMER_ASSETS_SERVE_CACHE": str(cache)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(["bash", "-c", as_here(serve).removesuffix("&")], stdout=out, stderr=out, env=env)
    try:

        def up() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                return requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_until(up, 60, "the service the README starts")
        script = "set -eu\n" + "\necho\n".join(as_here(c) for c in asking)
        done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    health, scored = (json.loads(line) for line in done.stdout.splitlines() if line.strip())
    assert health["histories_day"] == str(next_day)
    assert scored["histories_day"] == str(next_day) and 0 < scored["probability"] < 1
    assert len(scored["explanations"]) == 3
