"""Hand-made landing days: exact lines, written the way different producers deliver them."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

from consumer_assets.events.landing import DATE_FOLDERS, MARKER, day_folder, is_gzip
from consumer_assets.storage.filesystem import Location, resolve

DAY = dt.date(2026, 3, 4)


def event(n: int, **changes: object) -> dict:
    record = {
        "event_id": f"{n:016x}",
        "profile_id": f"p{n % 3}",
        "session_id": "s1",
        "ts": f"2026-03-04T10:{n % 60:02d}:00.000Z",
        "event_type": "product_view",
        "article_id": "a1",
        "brand_id": "b1",
        "category": "dresses",
        "price": 19.5,
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v != "<drop>"}


def line(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def land(
    root: Path | str,
    files: dict[str, list[bytes] | bytes],
    day: dt.date = DAY,
    marker: bool | str | None = True,
    layout: str = DATE_FOLDERS,
) -> str:
    """Write a day under `root` (a folder or a URI, s3:// included) and return the landing URI.

    `files` maps a path inside the day folder to its lines (gzip-compressed if the name ends in
    .gz) or to bytes written as they are. `marker`: "json" (or True) writes a `_SUCCESS` with the
    line count of every file given as lines, "empty" an empty one, None (or False) none.
    """
    location = resolve(root.as_uri() if isinstance(root, Path) else root)
    folder = location.child(day_folder(day, layout))
    for name, content in files.items():
        if isinstance(content, bytes):
            data = content
        else:
            text = b"".join(x + b"\n" for x in content)
            data = gzip.compress(text, mtime=0) if is_gzip(name) else text
        _write(folder, name, data)
    if marker in (True, "json"):
        counts = {name: len(lines) for name, lines in files.items() if not isinstance(lines, bytes)}
        body = {"date": str(day), "files": counts, "records": sum(counts.values())}
        _write(folder, MARKER, json.dumps(body).encode())
    elif marker == "empty":
        _write(folder, MARKER, b"")
    elif marker not in (None, False):
        raise ValueError(f"marker must be 'json', 'empty' or None, got {marker!r}")
    return location.uri


def _write(folder: Location, name: str, data: bytes) -> None:
    target = folder.child(name)
    if folder.is_local:
        Path(target.root).parent.mkdir(parents=True, exist_ok=True)
    with folder.fs.open_output_stream(target.root, compression=None) as out:
        out.write(data)
