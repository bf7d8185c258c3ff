"""The landing-zone conventions that the simulator, ingestion and the tests share.

A day's tracking events land under one folder (or S3 prefix) per day, named by one of two
layouts: `date=YYYY-MM-DD/` (hive style, the default) or `YYYY/MM/DD/` (the usual prefix of S3
deliveries such as Kinesis Firehose). Inside it, at any depth (`hour=13/`, `13/`), every file
named `*.jsonl.gz`, `*.json.gz`, `*.jsonl` or `*.json` holds JSON Lines; names starting with `_`
or `.` (and whatever lies below such a folder, e.g. `_temporary/`) are a producer's bookkeeping,
never data. A file with another name that still looks like data (`.JSONL`, `.ndjson`,
`.jsonl.gz.tmp`, `.bz2`, ...) is not read either, but reported. A `_SUCCESS` file in the day
folder says the day is complete: empty (the Hadoop convention) or a JSON object whose "files"
maps each file to its line count.
"""

from __future__ import annotations

import datetime as dt
import re

MARKER = "_SUCCESS"

DATE_FOLDERS = "date=YYYY-MM-DD"
DATED_FOLDERS = "YYYY/MM/DD"
FOLDER_LAYOUTS: tuple[str, ...] = (DATE_FOLDERS, DATED_FOLDERS)

DATA_SUFFIXES: tuple[str, ...] = (".jsonl.gz", ".json.gz", ".jsonl", ".json")
# Name parts (any case) of files that look like event data though no data suffix matches them: another
# spelling of JSON Lines, another compression, a temporary name around either. Such a file left out of a
# day is reported as data not ingested, where a README or a manifest is merely listed.
DATA_LOOKING_PARTS = frozenset(
    {"json", "jsonl", "ndjson", "ldjson", "jsonlines", "gz", "gzip", "bz2", "xz", "zst", "zstd", "lz4", "snappy", "zip"}
)
# How the simulator (and most producers) name a day's files; DuckDB and Spark read a day with it.
FILE_GLOB = "*.jsonl.gz"


def day_folder(day: dt.date, layout: str = DATE_FOLDERS) -> str:
    """The day's folder relative to the landing root, e.g. `date=2026-03-04` or `2026/03/04`."""
    if layout == DATE_FOLDERS:
        return f"date={day.isoformat()}"
    if layout == DATED_FOLDERS:
        return f"{day:%Y/%m/%d}"
    raise ValueError(f"unknown landing folder layout {layout!r}; expected one of {', '.join(FOLDER_LAYOUTS)}")


def data_file_name(index: int) -> str:
    """The name of a day's index-th file as the simulator writes it."""
    return f"events-{index:04d}.jsonl.gz"


def is_bookkeeping(relative: str) -> bool:
    """True for a path (relative to the day folder) that is, or lies below, a `_` or `.` name."""
    return any(part.startswith(("_", ".")) for part in relative.split("/"))


def is_data_file(relative: str) -> bool:
    """True for a path (relative to the day folder) that holds events: a data suffix, no bookkeeping part."""
    return relative.endswith(DATA_SUFFIXES) and not is_bookkeeping(relative)


def looks_like_data(relative: str) -> bool:
    """True for a data file, or a name like one in another case, spelling or compression; never bookkeeping."""
    if is_bookkeeping(relative):
        return False
    parts = relative.rsplit("/", 1)[-1].lower().split(".")[1:]
    return is_data_file(relative) or any(part in DATA_LOOKING_PARTS for part in parts)


def is_gzip(relative: str) -> bool:
    return relative.endswith(".gz")


def file_order(relative: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for a day's files: numbers in names compare as numbers (`hour=9` before `hour=13`).

    The order matters: of two records with the same event id, the one in the earlier file is kept.
    """
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", relative) if p)
