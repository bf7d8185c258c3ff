"""`consumer-assets serve`: load the model in force and a day's state, then answer HTTP under uvicorn."""

from __future__ import annotations

import datetime as dt
import logging
import time

import torch
import uvicorn

from consumer_assets.service import logs
from consumer_assets.service.app import create_app
from consumer_assets.service.metrics import Metrics
from consumer_assets.serving.score import Scorer
from consumer_assets.serving.snapshot import Live
from consumer_assets.storage.tables import TableStore

_log = logging.getLogger("consumer_assets.service")


def described(scorer: Scorer) -> dict[str, object]:
    return {
        "model_version": scorer.model_version,
        "histories_day": scorer.histories_day,
        "profiles": scorer.state.profiles,
        "state_mb": round(scorer.state.nbytes / 1e6, 1),
    }


def serve(storage: str, host: str, port: int, day: dt.date | None, poll_seconds: float) -> None:
    """Serve until interrupted: binds `host` (127.0.0.1 unless told otherwise)."""
    logs.configure()
    # One request scores one history: more intra-op threads only wait for each other.
    torch.set_num_threads(1)
    metrics = Metrics()

    def on_swap(old: Scorer, new: Scorer, seconds: float) -> None:
        metrics.swapped()
        fields = {"from": described(old), "to": described(new), "load_seconds": round(seconds, 3)}
        _log.info("swapped in a newer model or histories day", extra={"fields": fields})

    started = time.perf_counter()
    live = Live(TableStore.at(storage), day, poll_seconds, on_swap=on_swap)
    fields = {**described(live.current), "storage": storage, "load_seconds": round(time.perf_counter() - started, 3)}
    fields |= {"poll_seconds": poll_seconds, "pinned_day": str(day) if day else None}
    _log.info("loaded", extra={"fields": fields})
    uvicorn.run(create_app(live, metrics), host=host, port=port, log_config=None, access_log=False)
