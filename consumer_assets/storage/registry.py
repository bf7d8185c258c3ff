"""The model registry: every trained model's artifact, and the approvals that put a model in force.

Models are artifacts (`ArtifactStore`) of `<name>/date=D/`; approvals are records of a `RecordLog`
at `<root>/<name>/_approvals/`, each naming one published version. A record is written once,
by a put-if-absent, after every blocking check of its model passed; nothing ever rewrites or
removes one, so the model in force for a day is always the newest approved model trained on or
before that day, and a model whose checks failed can never become it.

An approval names the checksum of the version it approves (`ArtifactVersion.checksum`, over every
file's sha256) and the checks that passed. Anyone with write access to the storage can add a
record, so each is read as untrusted: one that is corrupt, names no checksum or another
version's, lists no check or one that did not pass, or names a version never published, is
refused loudly (`InvalidApprovalError`, naming its file) rather than skipped. Skipping would
quietly put an older model in force and hide that something wrote into the registry; an
operator has to look at the file and remove it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consumer_assets.storage.artifacts import ArtifactStore, ArtifactVersion, RecordLog
from consumer_assets.storage.validate import InvalidRecordError, field, sha256_hex

APPROVALS = "_approvals"


class NoApprovedModelError(LookupError):
    """No model trained on or before the day asked about has been approved."""


class InvalidApprovalError(InvalidRecordError):
    """An approval record that does not approve the version it names: forged, corrupt or of another format."""


@dataclass(frozen=True)
class Approved:
    """An approved model version, its approval record, and the checks that record says passed."""

    version: ArtifactVersion
    approval: int
    approved_at: str
    checks: dict[str, dict[str, Any]]

    @property
    def label(self) -> str:
        return self.version.label


def _passed_checks(checks: Any, where: str, error: type[ValueError] = ValueError) -> dict[str, dict[str, Any]]:
    """`checks` (check name -> {"passed": True, "reason": ...}) if there is one and every one passed."""
    if not isinstance(checks, Mapping) or not checks:
        raise error(f"{where}: no checks; an approval must list the checks that passed")
    for name, check in checks.items():
        passed = check.get("passed") if isinstance(check, Mapping) else None
        if passed is False:
            raise error(f"{where}: check {name} did not pass")
        if passed is not True:
            raise error(f"{where}: check {name!r}: passed must be true, got {check!r}")
    return {str(name): dict(check) for name, check in checks.items()}


class ModelRegistry:
    """Publishes model versions and approves them; answers which model is in force on a day."""

    def __init__(self, artifacts: ArtifactStore, name: str) -> None:
        self.artifacts = artifacts
        self.name = name
        self.approvals = RecordLog(artifacts.location.child(name, APPROVALS))

    def publish(self, day: dt.date, files: Mapping[str, bytes], metadata: Mapping[str, Any]) -> ArtifactVersion:
        return self.artifacts.put(self.name, day.isoformat(), files, metadata)

    def approve(
        self,
        version: ArtifactVersion,
        checks: Mapping[str, Mapping[str, Any]],
        details: Mapping[str, Any] | None = None,
    ) -> Approved:
        """Put `version` in force because every one of `checks` passed (ValueError if one did not);
        `details` (the bars the checks used) are kept with the record."""
        passed = _passed_checks(checks, f"approving {self.name} {version.label}")
        at = dt.datetime.now(dt.UTC).isoformat()
        record = {
            "partition": version.partition,
            "version": version.number,
            "checksum": version.checksum,
            "checks": passed,
            "details": dict(details or {}),
            "approved_at": at,
        }
        return Approved(version, self.approvals.append(record), at, passed)

    def in_force(self, day: dt.date) -> Approved | None:
        """The newest approved model trained on or before `day` (the latest approval among equals).

        Every record is checked; the chosen one must also match its version's checksum."""
        best: tuple[str, int] | None = None
        chosen: dict[str, Any] | None = None
        for number in self.approvals.numbers():
            record = _approval(self.approvals, number)
            key = (record["partition"], number)
            if record["partition"] <= day.isoformat() and (best is None or key > best):
                best, chosen = key, record
        if chosen is None:
            return None
        return Approved(self._approved_version(chosen), chosen["number"], chosen["approved_at"], chosen["checks"])

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

    def _approved_version(self, record: Mapping[str, Any]) -> ArtifactVersion:
        uri = self.approvals.uri(record["number"])
        try:
            version = self.artifacts.get(self.name, record["partition"], record["version"])
        except FileNotFoundError as exc:
            raise InvalidApprovalError(
                f"{uri}: names version {record['version']} of {self.name}[{record['partition']}], which was never "
                "published"
            ) from exc
        if version.checksum != record["checksum"]:
            raise InvalidApprovalError(
                f"{uri}: approves checksum {record['checksum']}, but version {version.label} of {self.name} has "
                f"checksum {version.checksum}: the record does not approve that version; remove it"
            )
        return version


def _approval(log: RecordLog, number: int) -> dict[str, Any]:
    """Approval `number` with every field checked; InvalidApprovalError naming its file otherwise."""
    uri = log.uri(number)
    try:
        record = log.read(number)
        partition = field(record, "partition", str, uri)
        if not _is_day(partition):
            raise InvalidApprovalError(f"{uri}: partition {partition!r} is no day (YYYY-MM-DD)")
        if field(record, "version", int, uri) < 1:
            raise InvalidApprovalError(f"{uri}: version {record['version']} is no version number")
        field(record, "approved_at", str, uri)
        if "checksum" not in record:
            # Records of the first format named a version only. No store of that format was ever
            # deployed, so none is migrated: such a record approves nothing.
            raise InvalidApprovalError(
                f"{uri}: no checksum of the version it approves (an approval of an older format, or not written by "
                "consumer_assets): it approves nothing; remove it and re-materialize the model's day"
            )
        sha256_hex(record["checksum"], "checksum", uri)
        _passed_checks(record.get("checks"), uri, InvalidApprovalError)
    except InvalidApprovalError:
        raise
    except InvalidRecordError as exc:
        raise InvalidApprovalError(str(exc)) from exc
    return record


def _is_day(text: str) -> bool:
    try:
        return dt.date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False
