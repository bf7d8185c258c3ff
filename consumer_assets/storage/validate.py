"""Reading what storage holds without trusting it: JSON records, plain file names, paths kept in their folder.

Anyone with write access to the storage (a stolen key, an operator's typo) can put any bytes
where a pointer or an approval is expected. What those records name decides which files are
read and which model scores every profile, so each field is checked before it is used, and
every refusal names the file it read.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from consumer_assets.storage.filesystem import Location

# Pointers and approvals are a few hundred bytes; anything far larger was not written by this code.
MAX_RECORD_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class InvalidRecordError(ValueError):
    """A stored record (a version pointer, an approval) is unreadable or not what this code writes."""


def decode_record(data: bytes, uri: str) -> dict[str, Any]:
    """The JSON object in `data`, read from `uri`; InvalidRecordError naming `uri` otherwise."""
    if len(data) > MAX_RECORD_BYTES:
        raise InvalidRecordError(f"{uri}: {len(data)} bytes or more, larger than any record this code writes")
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRecordError(f"{uri}: not valid JSON ({exc}); it was changed after it was written") from exc
    if not isinstance(value, dict):
        raise InvalidRecordError(f"{uri}: not a JSON object but {type(value).__name__}")
    return value


def field(record: Mapping[str, Any], key: str, kind: type, uri: str) -> Any:
    """`record[key]` if it is of `kind` (never a bool for an int); InvalidRecordError naming `uri` otherwise."""
    if key not in record:
        raise InvalidRecordError(f"{uri}: no {key!r} field")
    value = record[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise InvalidRecordError(f"{uri}: {key!r} is {value!r}, not {kind.__name__}")
    return value


def plain_name(value: Any, what: str, uri: str) -> str:
    """`value` if it names an entry of one folder (no separator, no `..`, not absolute, not empty)."""
    if (
        not isinstance(value, str)
        or value in ("", ".", "..")
        or len(value) > 255
        or any(c in value for c in "/\\\x00")
        or os.path.isabs(value)
    ):
        raise InvalidRecordError(f"{uri}: {what} {value!r} is no plain name inside its folder")
    return value


def sha256_hex(value: Any, what: str, uri: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise InvalidRecordError(f"{uri}: {what} {value!r} is no sha256 (64 lowercase hex digits)")
    return value


def confined(partition: Location, folder: str, name: str, pointer: str) -> str:
    """The path of file `name` in `folder` of `partition`; InvalidRecordError (naming `pointer`, the record
    that named it) unless it is that file itself: on a local disk a plain name can still be a symbolic
    link to anywhere."""
    path = partition.path(plain_name(folder, "folder", pointer), plain_name(name, "file name", pointer))
    if partition.is_local:
        real, expected = os.path.realpath(path), os.path.join(os.path.realpath(partition.root), folder, name)
        if real != expected:
            raise InvalidRecordError(
                f"{pointer}: {partition.child(folder, name).uri} resolves to {real}, outside "
                f"{partition.child(folder).uri}"
            )
    return path
