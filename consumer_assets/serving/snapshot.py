"""What the service scores with, loaded from storage, and newer versions swapped in as they appear.

A `Scorer` is the approved model in force (the newest approval, storage.registry) and the committed
histories state of a day (the newest current one unless a day is pinned). `Live` holds one and polls
storage in a background thread: when a newer model is approved or a newer day committed, it loads the
new one fully beside the old, then replaces the reference in one assignment, so a request scores with
either the old or the new one, never a mix, and none fails for the swap. A poll that fails (storage
unreachable, a corrupt approval) is logged and the old one kept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from consumer_assets.histories.lineage import stale_days
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.serving.lookup import STATE_TABLE, load_state
from consumer_assets.serving.score import Scorer
from consumer_assets.storage.artifacts import ArtifactStore
from consumer_assets.storage.registry import Approved, ModelRegistry
from consumer_assets.storage.tables import TableStore

MODEL_NAME = "trained_lstm_model"
# How often storage is polled for a newer model or day, by default: a swap is live within a minute.
POLL_SECONDS = 30.0

_log = logging.getLogger(__name__)


class NoStateError(LookupError):
    """No committed, current histories state to serve."""


def latest_day(store: TableStore) -> dt.date:
    """The newest day whose committed state is current (not built on raw_events re-delivered since)."""
    days = [dt.date.fromisoformat(d) for d in store.dates(STATE_TABLE)]
    for day in sorted(days, reverse=True):
        if not stale_days(store, [day]):
            return day
    raise NoStateError(
        f"no current consumer_histories_state under {store.uri(STATE_TABLE)}: materialize consumer_histories first"
    )


def in_force(registry: ModelRegistry) -> Approved:
    """The approved model in force now: the newest approved one."""
    return registry.require_in_force(dt.date.max)


def load_model(registry: ModelRegistry, approved: Approved) -> ModelArtifact:
    files = registry.load(approved.version)
    return ModelArtifact.from_files(files, source=registry.artifacts.uri(approved.version))


def load_scorer(store: TableStore, cache: Path, day: dt.date | None = None) -> Scorer:
    """The model in force and the state of `day` (default: the newest current one), its cache under `cache`."""
    registry = ModelRegistry(ArtifactStore(store.location), MODEL_NAME)
    approved = in_force(registry)
    state = load_state(store, day or latest_day(store), cache)
    return Scorer(load_model(registry, approved).model, approved.label, state)


class Live:
    """The scorer in use, replaced by a newer one when storage has one (polled every `poll_seconds`)."""

    def __init__(
        self,
        store: TableStore,
        cache: Path,
        day: dt.date | None = None,
        poll_seconds: float = POLL_SECONDS,
        on_swap: Callable[[Scorer, Scorer, float], None] | None = None,
    ) -> None:
        self.store = store
        self.cache = cache
        self.pinned = day
        self.poll_seconds = poll_seconds
        self.registry = ModelRegistry(ArtifactStore(store.location), MODEL_NAME)
        self.on_swap = on_swap
        self.current = load_scorer(store, cache, day)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Load and swap in a newer model or day if storage has one; whether it did."""
        current = self.current
        approved = in_force(self.registry)
        day = self.pinned or latest_day(self.store)
        if approved.label == current.model_version and day == current.state.day:
            return False
        started = time.perf_counter()
        model = current.model if approved.label == current.model_version else None
        if model is None:
            model = load_model(self.registry, approved).model
        state = current.state if day == current.state.day else load_state(self.store, day, self.cache)
        fresh = dataclasses.replace(current, model=model, model_version=approved.label, state=state)
        self.current = fresh  # one reference assignment: requests see the old or the new scorer, whole
        if self.on_swap is not None:
            self.on_swap(current, fresh, time.perf_counter() - started)
        return True

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:
                _log.exception("polling storage for a newer model or histories day failed; serving the loaded one")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, name="serving-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
