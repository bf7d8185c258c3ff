"""Non-table outputs (model files) beside the tables: versioned folders made visible by a put-if-absent pointer.

Layout under the storage root::

    <root>/<name>/date=D/<version>/model.safetensors, config.json, metrics.json   # the files
    <root>/<name>/date=D/_versions/00001.json                                    # the pointer

Files are written first, then a small pointer naming them with their sha256 is created only if
no pointer of that number exists yet (S3 `If-None-Match: "*"`, a hard link on a local disk), so
two writers can never both publish number N and a reader never sees a version whose files are
incomplete. Loading verifies every file's sha256. Nothing here unpickles anything: the files are
bytes, and what reads them (safetensors, JSON) is the caller's.

A pointer is read as untrusted (storage.validate): it must be the pointer of the name, partition
and number asked for, its folder and file names plain names, and every file it names must
resolve inside that folder, so no record can make this code read a file anywhere else.

`RecordLog` is the same mechanism for small JSON records (the model approvals): numbered,
put-if-absent, append-only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from consumer_assets.storage.filesystem import Location
from consumer_assets.storage.tables import ConcurrentWriteError
from consumer_assets.storage.validate import (
    MAX_RECORD_BYTES,
    InvalidRecordError,
    confined,
    decode_record,
    field,
    plain_name,
    sha256_hex,
)

VERSIONS = "_versions"


class ArtifactIntegrityError(RuntimeError):
    """A stored file does not match the sha256 its pointer recorded."""


def _put_if_absent(location: Location, path: str, body: bytes) -> bool:
    """Create `path` with `body` unless it exists; True if this call created it.

    On S3 through the boto3 client of the location's own settings: pyarrow cannot put conditionally.
    """
    if location.is_local:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temp = f"{os.path.dirname(path)}/.{uuid.uuid4().hex}.tmp"
        with open(temp, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temp, path)  # atomic, and fails if the name exists
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(temp)
    if location.s3 is None:
        raise ValueError(f"{location.uri} is remote but has no S3 settings: resolve it with storage.filesystem.resolve")
    s3_client = location.s3.client()
    bucket, key = path.split("/", 1)
    try:
        s3_client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
        return True
    except s3_client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
            return False
        raise


class RecordLog:
    """Numbered JSON records under one folder, each created once by a put-if-absent."""

    def __init__(self, location: Location) -> None:
        self.location = location

    def numbers(self) -> list[int]:
        selector = pafs.FileSelector(self.location.root, allow_not_found=True)
        infos = self.location.fs.get_file_info(selector)
        stems = [i.base_name[:-5] for i in infos if i.base_name.endswith(".json")]
        return sorted(int(stem) for stem in stems if stem.isascii() and stem.isdigit())

    def uri(self, number: int) -> str:
        return self.location.child(f"{number:05d}.json").uri

    def read(self, number: int) -> dict[str, Any]:
        """Record `number`; InvalidRecordError naming its file unless it is a JSON object of that number."""
        with self.location.fs.open_input_stream(self.location.path(f"{number:05d}.json")) as stream:
            data = stream.read(MAX_RECORD_BYTES + 1)
        record = decode_record(data, self.uri(number))
        if field(record, "number", int, self.uri(number)) != number:
            raise InvalidRecordError(f"{self.uri(number)}: its number is {record['number']}, the file's {number}")
        return record

    def records(self) -> list[dict[str, Any]]:
        return [self.read(n) for n in self.numbers()]

    def append(self, record: Mapping[str, Any]) -> int:
        """Add a record as the next number; ConcurrentWriteError if another writer took that number."""
        number = (self.numbers() or [0])[-1] + 1
        body = json.dumps({**record, "number": number}, indent=1, sort_keys=True).encode()
        if not _put_if_absent(self.location, self.location.path(f"{number:05d}.json"), body):
            raise ConcurrentWriteError(
                f"{self.location.uri}: record {number} was created by another writer meanwhile; retry"
            )
        return number


@dataclass(frozen=True)
class ArtifactVersion:
    """One published version of an artifact: where its files are and their checksums."""

    name: str
    partition: str
    number: int
    folder: str  # relative to <root>/<name>/date=D/
    files: dict[str, dict[str, Any]]  # file name -> {"sha256", "size"}
    metadata: dict[str, Any]
    created_at: str

    @property
    def id(self) -> str:
        return f"{self.partition}/{self.folder}"

    @property
    def checksum(self) -> str:
        """sha256 of which version this is and every file's sha256: an approval names it, so it approves
        exactly this version's bytes, and a record copied from another version's approval does not."""
        sha256 = {name: entry["sha256"] for name, entry in self.files.items()}
        listing = [self.name, self.partition, self.number, self.folder, sha256]
        return hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()

    @property
    def label(self) -> str:
        """How people and the predictions name it: the partition (training day) and the number, `D/vN`."""
        return f"{self.partition}/v{self.number}"


class ArtifactStore:
    """Versioned, checksummed groups of files (a model) per asset partition, under one root."""

    def __init__(self, location: Location) -> None:
        self.location = location

    def _partition(self, name: str, partition: str) -> Location:
        where = self.location.uri
        folder = plain_name(f"date={partition}", "partition", where)
        return self.location.child(plain_name(name, "artifact", where), folder)

    def _log(self, name: str, partition: str) -> RecordLog:
        return RecordLog(self._partition(name, partition).child(VERSIONS))

    def put(
        self, name: str, partition: str, files: Mapping[str, bytes], metadata: Mapping[str, Any]
    ) -> ArtifactVersion:
        """Write the files into a new folder, then publish them as the partition's next version."""
        started = dt.datetime.now(dt.UTC)
        folder = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        where = self._partition(name, partition).child(folder)
        if where.is_local:
            where.fs.create_dir(where.root, recursive=True)
        checksums = {}
        for file_name, data in files.items():
            with where.fs.open_output_stream(where.path(plain_name(file_name, "file name", where.uri))) as out:
                out.write(data)
            checksums[file_name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        record = {
            "name": name,
            "partition": partition,
            "folder": folder,
            "files": checksums,
            "metadata": dict(metadata),
            "created_at": started.isoformat(),
        }
        try:
            number = self._log(name, partition).append(record)
        except BaseException:
            with contextlib.suppress(OSError):
                where.fs.delete_dir(where.root)
            raise
        return ArtifactVersion(number=number, **record)

    def versions(self, name: str, partition: str) -> list[ArtifactVersion]:
        return [self.get(name, partition, n) for n in self._log(name, partition).numbers()]

    def latest(self, name: str, partition: str) -> ArtifactVersion | None:
        numbers = self._log(name, partition).numbers()
        return self.get(name, partition, numbers[-1]) if numbers else None

    def get(self, name: str, partition: str, number: int) -> ArtifactVersion:
        """Version `number`; FileNotFoundError if it was never published, InvalidRecordError if its pointer is bad."""
        log = self._log(name, partition)
        return _version(log.read(number), name, partition, log.uri(number))

    def load(self, version: ArtifactVersion) -> dict[str, bytes]:
        """The version's files, each checked against its recorded sha256."""
        partition = self._partition(version.name, version.partition)
        pointer = self._log(version.name, version.partition).uri(version.number)
        where = partition.child(plain_name(version.folder, "folder", pointer))
        loaded = {}
        for file_name, expected in version.files.items():
            path = confined(partition, version.folder, file_name, pointer)
            with where.fs.open_input_stream(path) as stream:
                data = stream.read()
            digest = hashlib.sha256(data).hexdigest()
            if digest != expected["sha256"]:
                raise ArtifactIntegrityError(
                    f"{where.child(file_name).uri} has sha256 {digest} but version {version.number} of "
                    f"{version.name}[{version.partition}] recorded {expected['sha256']}: the file was changed "
                    "after it was written; re-materialize the partition"
                )
            loaded[file_name] = data
        return loaded

    def uri(self, version: ArtifactVersion) -> str:
        return self._partition(version.name, version.partition).child(version.folder).uri


def _version(record: Mapping[str, Any], name: str, partition: str, uri: str) -> ArtifactVersion:
    """The version a pointer read from `uri` describes, every field checked before anything uses it."""
    for key, expected in (("name", name), ("partition", partition)):
        if field(record, key, str, uri) != expected:
            raise InvalidRecordError(f"{uri}: {key} {record[key]!r}, but it is the pointer of {name}[{partition}]")
    files: dict[str, dict[str, Any]] = {}
    for file_name, entry in field(record, "files", dict, uri).items():
        plain_name(file_name, "file name", uri)
        if not isinstance(entry, dict):
            raise InvalidRecordError(f"{uri}: the entry of {file_name!r} is {entry!r}, not an object")
        files[file_name] = {
            "sha256": sha256_hex(entry.get("sha256"), f"the sha256 of {file_name!r}", uri),
            "size": field(entry, "size", int, uri),
        }
    if not files:
        raise InvalidRecordError(f"{uri}: names no files")
    return ArtifactVersion(
        name=name,
        partition=partition,
        number=field(record, "number", int, uri),
        folder=plain_name(field(record, "folder", str, uri), "folder", uri),
        files=files,
        metadata=field(record, "metadata", dict, uri),
        created_at=field(record, "created_at", str, uri),
    )
