"""The landing zone as the shop writes it: one folder per day, gzip JSON Lines files, then `_SUCCESS`.

`_SUCCESS` is a JSON object {"date", "files": {name: line count}, "records"} written after the day's
files; a day without it is still being written and is not read.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pyarrow.fs as pafs

from consumer_assets.storage.filesystem import Location, resolve

MARKER = "_SUCCESS"


class LandingDayError(Exception):
    """The landing day cannot be ingested: missing, incomplete or inconsistent with its marker."""


def day_folder(day: dt.date) -> str:
    return f"date={day.isoformat()}"


@dataclass(frozen=True)
class LandingDay:
    """A complete landed day: its files and the line counts its marker promises."""

    location: Location
    day: dt.date
    files: dict[str, int]

    @property
    def records(self) -> int:
        return sum(self.files.values())

    def uri(self, name: str = "") -> str:
        return self.location.child(day_folder(self.day), name).uri if name else self.location.uri

    def read_lines(self, name: str) -> list[bytes]:
        """The raw lines of one file (without the newline), exactly as many as the marker says."""
        path = self.location.path(day_folder(self.day), name)
        compression = "gzip" if name.endswith(".gz") else None
        try:
            with self.location.fs.open_input_stream(path, compression=compression) as stream:
                data = stream.read()
        except OSError as exc:
            raise LandingDayError(f"{self.uri(name)} cannot be read as {compression or 'plain'} text: {exc}") from exc
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if len(lines) != self.files[name]:
            raise LandingDayError(f"{self.uri(name)} holds {len(lines)} lines but {MARKER} promises {self.files[name]}")
        return lines


def open_day(landing_uri: str, day: dt.date) -> LandingDay:
    """The complete landed day, or a LandingDayError naming the path that is missing or wrong."""
    location = resolve(landing_uri).child(day_folder(day))
    fs = location.fs
    if fs.get_file_info(location.root).type != pafs.FileType.Directory:
        raise LandingDayError(f"landing day {day} is missing: no folder {location.uri}")
    marker = location.path(MARKER)
    try:
        with fs.open_input_stream(marker) as stream:
            body = json.loads(stream.read())
    except FileNotFoundError as exc:
        raise LandingDayError(f"landing day {day} is incomplete: {location.uri} has no {MARKER} marker yet") from exc
    except json.JSONDecodeError as exc:
        raise LandingDayError(f"{location.child(MARKER).uri} is not valid JSON: {exc}") from exc
    files = body.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, int) for v in files.values()):
        raise LandingDayError(f"{location.child(MARKER).uri} has no 'files' mapping of name -> line count")
    for name in files:
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise LandingDayError(f"{location.child(MARKER).uri} lists {name!r}, which is not a file name in the day")
        if fs.get_file_info(location.path(name)).type != pafs.FileType.File:
            raise LandingDayError(
                f"landing day {day} is incomplete: {MARKER} lists {location.child(name).uri}, which is missing"
            )
    return LandingDay(resolve(landing_uri), day, dict(files))


def completed_at(landing_uri: str, day: dt.date) -> int | None:
    """The modification time (ns) of the day's marker, or None while the day is incomplete."""
    location = resolve(landing_uri).child(day_folder(day))
    info = location.fs.get_file_info(location.path(MARKER))
    return info.mtime_ns if info.type == pafs.FileType.File else None
