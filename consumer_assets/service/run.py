"""`consumer-assets serve`: load the model in force and a day's state, then answer HTTP under uvicorn."""

from __future__ import annotations

import ctypes
import datetime as dt
import gc
import logging
import os
import signal
import socket
import time
from pathlib import Path

import torch
import uvicorn

from consumer_assets.service import logs
from consumer_assets.service.app import create_app
from consumer_assets.service.metrics import Metrics
from consumer_assets.serving.score import Scorer
from consumer_assets.serving.snapshot import Live
from consumer_assets.storage.tables import TableStore

_log = logging.getLogger("consumer_assets.service")
PR_SET_PDEATHSIG = 1  # prctl(2)


def described(scorer: Scorer) -> dict[str, object]:
    return {
        "model_version": scorer.model_version,
        "histories_day": scorer.histories_day,
        "profiles": scorer.state.profiles,
        "state_cache_mb": round(scorer.state.nbytes / 1e6, 1),
        "state_cache_built": scorer.state.built,
    }


def bound(host: str, port: int) -> socket.socket:
    """The service's socket, bound but not listening: connections are refused until a worker has
    loaded and uvicorn listens on it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def serve(
    storage: str, host: str, port: int, day: dt.date | None, poll_seconds: float, cache: Path, workers: int = 1
) -> None:
    """Serve until interrupted: binds `host` (127.0.0.1 unless told otherwise). With several `workers`,
    the process forks the others before loading anything (deltalake's runtime does not survive a
    fork); they answer on the same socket, each loads the model and maps the state cache (the first
    to get there builds it, the others wait for it and share its pages), and each polls storage and
    swaps on its own."""
    logs.configure()
    # Scoring runs on the event loop (serving.batching): more intra-op threads only wait for each other.
    torch.set_num_threads(1)
    sock = bound(host, port)
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            # A worker ends with the process that forked it.
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            _worker(storage, day, poll_seconds, cache, workers, sock)
            os._exit(0)
        children.append(pid)
    try:
        _worker(storage, day, poll_seconds, cache, workers, sock)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)


def _worker(
    storage: str, day: dt.date | None, poll_seconds: float, cache: Path, workers: int, sock: socket.socket
) -> None:
    """Load, then answer on `sock` until told to stop."""
    metrics = Metrics()

    def on_swap(old: Scorer, new: Scorer, seconds: float) -> None:
        metrics.swapped()
        fields = {"from": described(old), "to": described(new), "load_seconds": round(seconds, 3)}
        _log.info("swapped in a newer model or histories day", extra={"fields": fields})

    started = time.perf_counter()
    live = Live(TableStore.at(storage), cache, day, poll_seconds, on_swap=on_swap)
    fields = {**described(live.current), "storage": storage, "load_seconds": round(time.perf_counter() - started, 3)}
    fields |= {"poll_seconds": poll_seconds, "pinned_day": str(day) if day else None, "workers": workers}
    _log.info("loaded", extra={"fields": fields})
    # What is loaded lives as long as the process: out of the garbage collector's way, so its full
    # collections, which would walk every object of torch, pyarrow and the rest, stay short.
    gc.collect()
    gc.freeze()
    # The peer address names a connection (serving.batching awaits a connection's next ask): not
    # rewritten from X-Forwarded-For, which would merge a proxy's connections into one.
    config = uvicorn.Config(create_app(live, metrics), log_config=None, access_log=False, proxy_headers=False)
    uvicorn.Server(config).run(sockets=[sock])
