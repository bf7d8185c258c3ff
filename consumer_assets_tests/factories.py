"""Hand-made landing days: exact lines, for tests that need to know every record."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

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


def land(root: Path, files: dict[str, list[bytes]], day: dt.date = DAY, marker: bool = True) -> str:
    folder = root / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (folder / name).write_bytes(gzip.compress(b"".join(x + b"\n" for x in lines)))
    if marker:
        counts = {name: len(lines) for name, lines in files.items()}
        (folder / "_SUCCESS").write_text(
            json.dumps({"date": str(day), "files": counts, "records": sum(counts.values())})
        )
    return root.as_uri()
