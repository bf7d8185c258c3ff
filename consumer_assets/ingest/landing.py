"""Find a complete landed day and read its files as blocks of whole lines.

Producers say differently that a day is complete (see events.landing for the layout):
- a JSON `_SUCCESS` {"files": {path: line count}, ...}: exactly those files, each checked to hold
  that many lines (what the simulator writes);
- an empty `_SUCCESS` (Hadoop, Spark): every data file under the day folder, at any depth;
- no marker at all (`require_marker=False`): the data files under the day folder, once the day
  has ended and nothing in its folder was modified for a quiet period.

Every other file of the folder is named, with its reason, in the day's `skipped` files; a day
holding a link (see listing) is refused, and so is a day that would ingest no file while files
that look like data lie in its folder.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from isal import igzip
from isal.isal_zlib import error as IsalError

from consumer_assets.events.landing import (
    DATE_FOLDERS,
    MARKER,
    day_folder,
    file_order,
    is_bookkeeping,
    is_data_file,
    is_gzip,
)
from consumer_assets.ingest.lines import MAX_LINE_BYTES, LineBlock, line_blocks
from consumer_assets.ingest.listing import (
    Entry,
    SkippedFile,
    linked_folder,
    list_day,
    open_file,
    skipped_files,
    unfollowed,
)
from consumer_assets.storage.filesystem import Location, resolve

# Decompressed bytes read at a time: a block of whole lines is validated at once, so a file's
# memory is a few blocks, whatever its size (a line over the line limit is cut while read).
BLOCK_BYTES = 4 << 20


class LandingDayError(Exception):
    """The landing day cannot be ingested: missing, incomplete or inconsistent with its marker."""


@dataclass(frozen=True)
class LandingRules:
    """How a producer delivers: the day folder layout, and whether a day needs a `_SUCCESS` marker.

    Without a marker a day is complete `quiet_minutes` after it ended (UTC) and after the newest
    file in its folder was modified. A line longer than `max_line_bytes` is quarantined as
    `line_too_long` with only its first bytes, never read into memory whole.
    """

    layout: str = DATE_FOLDERS
    require_marker: bool = True
    quiet_minutes: float = 60.0
    max_line_bytes: int = MAX_LINE_BYTES

    def __post_init__(self) -> None:
        day_folder(dt.date(2000, 1, 1), self.layout)  # refuses an unknown layout, naming the choices
        if self.quiet_minutes < 0:
            raise ValueError(f"quiet_minutes must not be negative, got {self.quiet_minutes}")
        if self.max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, got {self.max_line_bytes}")

    @property
    def quiet(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.quiet_minutes)


@dataclass(frozen=True)
class LandedFile:
    name: str  # path relative to the day folder
    size: int  # bytes as stored
    lines: int | None  # what a JSON marker promises, else None


@dataclass(frozen=True)
class LandingDay:
    """A complete landed day: its data files in reading order, and how it was found complete."""

    folder: Location
    day: dt.date
    files: tuple[LandedFile, ...]
    marker: str  # "json", "empty" or "none"
    completed_at: int  # ns since the epoch: the marker's mtime, or the newest file's without one
    skipped: tuple[SkippedFile, ...] = ()  # every other file of the folder but the marker, with its reason
    max_line_bytes: int = MAX_LINE_BYTES  # longer lines are read cut to their first bytes

    def uri(self, name: str = "") -> str:
        return self.folder.child(name).uri if name else self.folder.uri

    def blocks(self, file: LandedFile, block_bytes: int | None = None) -> Iterator[LineBlock]:
        """The file's lines in blocks of about BLOCK_BYTES; LandingDayError if unreadable or not as its marker says."""
        lines = 0
        try:
            if file.size:  # an empty file is no gzip stream, yet an empty delivery
                with self._open(file) as stream:
                    for block in line_blocks(stream, block_bytes or BLOCK_BYTES, self.max_line_bytes):
                        lines += len(block.ends)
                        yield block
        except (OSError, EOFError, IsalError) as exc:  # EOFError: a truncated gzip stream
            kind = "gzip-compressed" if is_gzip(file.name) else "plain"
            raise LandingDayError(f"{self.uri(file.name)} cannot be read as {kind} text: {exc}") from exc
        if file.lines is not None and lines != file.lines:
            raise LandingDayError(f"{self.uri(file.name)} holds {lines} lines but {MARKER} promises {file.lines}")

    @contextmanager
    def _open(self, file: LandedFile) -> Iterator[BinaryIO]:
        """The file's decompressed bytes. gzip through ISA-L: 3-6x faster than zlib, and without the GIL."""
        with open_file(self.folder, file.name) as stream:
            if is_gzip(file.name):
                with igzip.IGzipFile(fileobj=stream) as unzipped:
                    yield unzipped
            else:
                yield stream

    def read_lines_at(self, file: LandedFile, numbers: np.ndarray) -> list[bytes]:
        """The raw lines with these (ascending, 1-based) numbers, read again from the file, cut as blocks are."""
        found: list[bytes] = []
        for block in self.blocks(file):
            wanted = numbers[(numbers >= block.first_line) & (numbers < block.first_line + len(block.ends))]
            starts = np.r_[0, block.ends[:-1] + 1]
            at = wanted - block.first_line
            found += [block.data[s:e] for s, e in zip(starts[at].tolist(), block.ends[at].tolist(), strict=True)]
        return found


def open_day(
    landing: str | Location, day: dt.date, rules: LandingRules | None = None, *, now: dt.datetime | None = None
) -> LandingDay:
    """The complete landed day, or a LandingDayError naming the path that is missing or wrong.

    `landing` is the landing zone's URI, or its Location where S3 settings come with it.
    """
    rules = rules or LandingRules()
    location = resolve(landing)
    folder, listed = listed_day(location, day, rules)
    if listed is None:
        raise LandingDayError(f"landing day {day} is missing: no folder {folder.uri}")
    if refused := unfollowed(folder, listed):
        raise LandingDayError(f"landing day {day} cannot be read: {refused}")
    marker = listed.get(MARKER)
    body = _read_marker(folder) if marker is not None else None
    if body is not None:
        kind, files = "json", _promised(folder, day, body, listed)
    else:
        data = sorted((name for name in listed if is_data_file(name)), key=file_order)
        files = tuple(LandedFile(name, listed[name].size, None) for name in data)
        kind = "empty" if marker is not None else "none"
    if marker is not None:
        at = marker.mtime_ns
    elif rules.require_marker:
        raise LandingDayError(f"landing day {day} is incomplete: {folder.uri} has no {MARKER} marker yet")
    else:
        at = quiet_since(folder, day, rules, listed, now or dt.datetime.now(dt.UTC))
    skipped = skipped_files(listed, {f.name for f in files}, kind == "json")
    if not files and (data_like := [s for s in skipped if s.looks_like_data]):
        named = ", ".join(f"{s.name} ({s.reason})" for s in data_like[:10])
        raise LandingDayError(
            f"landing day {day} ingests no file, yet holds {len(data_like)} that look like data: {named}; "
            f"in {folder.uri}"
        )
    return LandingDay(folder, day, files, kind, at, skipped, rules.max_line_bytes)


def listed_day(location: Location, day: dt.date, rules: LandingRules) -> tuple[Location, dict[str, Entry] | None]:
    """The day folder and what it holds (None if there is none); LandingDayError if a folder on the way is a link."""
    relative = day_folder(day, rules.layout)
    if (link := linked_folder(location, relative)) is not None:
        uri, target = link
        raise LandingDayError(
            f"landing day {day} cannot be read: {uri} is a symbolic link (to {target}); "
            "links are never followed in the landing zone"
        )
    folder = location.child(relative)
    return folder, list_day(folder)


def _read_marker(folder: Location) -> dict | None:
    """The JSON marker's body, or None for an empty (Hadoop) marker."""
    uri = folder.child(MARKER).uri
    try:
        with open_file(folder, MARKER) as stream:
            text = stream.read()
    except OSError as exc:
        raise LandingDayError(f"{uri} cannot be read: {exc}") from exc
    if not text.strip():
        return None
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LandingDayError(f"{uri} is neither empty nor valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise LandingDayError(f"{uri} is JSON but not an object with a 'files' mapping")
    return body


def _promised(folder: Location, day: dt.date, body: dict, listed: dict[str, Entry]) -> tuple[LandedFile, ...]:
    uri = folder.child(MARKER).uri
    files = body.get("files")
    counts_ok = isinstance(files, dict) and all(type(v) is int and v >= 0 for v in files.values())
    if not counts_ok:
        raise LandingDayError(f"{uri} has no 'files' mapping of name -> line count (a non-negative integer)")
    for name in files:
        parts = name.split("/")
        if "\\" in name or any(part in ("", ".", "..") for part in parts):
            raise LandingDayError(f"{uri} lists {name!r}, which is not a path inside the day folder")
        if name not in listed:
            raise LandingDayError(
                f"landing day {day} is incomplete: {MARKER} lists {folder.child(name).uri}, which is missing"
            )
        if is_bookkeeping(name):
            raise LandingDayError(f"{uri} lists {name!r}, a bookkeeping name (`_` or `.`), not a data file")
    return tuple(LandedFile(name, listed[name].size, files[name]) for name in sorted(files, key=file_order))


def quiet_since(folder: Location, day: dt.date, rules: LandingRules, listed: dict[str, Entry], now: dt.datetime) -> int:
    """The newest mtime in the folder (ns) if the day counts as complete without a marker, else LandingDayError."""
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    if now < day_end + rules.quiet:
        raise LandingDayError(
            f"landing day {day} is incomplete: {folder.uri} has no {MARKER} marker and the day counts as complete "
            f"only {rules.quiet_minutes:g} minutes after it ends, at {day_end + rules.quiet:%Y-%m-%dT%H:%M}Z"
        )
    if not listed:
        return _ns(day_end + rules.quiet)
    # Of files modified at once, the last in reading order is named, whatever order the listing came in.
    name, info = max(listed.items(), key=lambda item: (item[1].mtime_ns, file_order(item[0])))
    modified = dt.datetime.fromtimestamp(info.mtime_ns / 1e9, dt.UTC)
    if modified > now - rules.quiet:
        raise LandingDayError(
            f"landing day {day} is incomplete: {folder.uri} has no {MARKER} marker and {folder.child(name).uri} "
            f"was modified at {modified:%Y-%m-%dT%H:%M:%S}Z, less than {rules.quiet_minutes:g} minutes ago"
        )
    return info.mtime_ns


def _ns(at: dt.datetime) -> int:
    return (at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000
