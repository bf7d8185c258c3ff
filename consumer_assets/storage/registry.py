"""The model registry: every trained model's artifact, and the approvals that put a model in force.

Models are artifacts (`ArtifactStore`) of `<name>/date=D/`; approvals are records of a `RecordLog`
at `<root>/<name>/_approvals/`, each naming one published version. A record is written once,
by a put-if-absent, after every blocking check of its model passed; nothing ever rewrites or
removes one, so the model in force for a day is always the newest approved model trained on or
before that day, and a model whose checks failed can never become it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consumer_assets.storage.artifacts import ArtifactStore, ArtifactVersion, RecordLog

APPROVALS = "_approvals"


class NoApprovedModelError(LookupError):
    """No model trained on or before the day asked about has been approved."""


@dataclass(frozen=True)
class Approved:
    """An approved model version and its approval record."""

    version: ArtifactVersion
    approval: int
    approved_at: str

    @property
    def label(self) -> str:
        return self.version.label


class ModelRegistry:
    """Publishes model versions and approves them; answers which model is in force on a day."""

    def __init__(self, artifacts: ArtifactStore, name: str) -> None:
        self.artifacts = artifacts
        self.name = name
        self.approvals = RecordLog(artifacts.location.child(name, APPROVALS))

    def publish(self, day: dt.date, files: Mapping[str, bytes], metadata: Mapping[str, Any]) -> ArtifactVersion:
        return self.artifacts.put(self.name, day.isoformat(), files, metadata)

    def approve(self, version: ArtifactVersion, reason: Mapping[str, Any]) -> Approved:
        at = dt.datetime.now(dt.UTC).isoformat()
        number = self.approvals.append(
            {"partition": version.partition, "version": version.number, "approved_at": at, "reason": dict(reason)}
        )
        return Approved(version, number, at)

    def in_force(self, day: dt.date) -> Approved | None:
        """The newest approved model trained on or before `day` (the latest approval among equals)."""
        best: tuple[str, int] | None = None
        chosen: dict[str, Any] | None = None
        for record in self.approvals.records():
            key = (record["partition"], record["number"])
            if record["partition"] <= day.isoformat() and (best is None or key > best):
                best, chosen = key, record
        if chosen is None:
            return None
        version = self.artifacts.get(self.name, chosen["partition"], chosen["version"])
        return Approved(version, chosen["number"], chosen["approved_at"])

    def require_in_force(self, day: dt.date) -> Approved:
        approved = self.in_force(day)
        if approved is None:
            raise NoApprovedModelError(
                f"no {self.name} trained on or before {day} has been approved (approvals under "
                f"{self.approvals.location.uri}): materialize {self.name} for a day up to {day} and let its "
                "checks pass first"
            )
        return approved

    def load(self, version: ArtifactVersion) -> dict[str, bytes]:
        return self.artifacts.load(version)
