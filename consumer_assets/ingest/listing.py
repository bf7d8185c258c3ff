"""What a landing day folder holds, listed and opened without following links, and why a file is not read.

On a local disk a symbolic link (to a file or a folder) and a FIFO, socket or device are listed as
what they are, never followed or opened: landing.open_day refuses a day holding one, so nothing
outside the landing root is read and a link loop cannot make a file count twice. On S3 there are
no links: a day is the keys below its prefix, and a key whose name would lead out of it (an empty,
`.` or `..` part) is listed as something other than a file, and refused the same way.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow.fs as pafs

from consumer_assets.events.landing import DATA_SUFFIXES, MARKER, is_bookkeeping, looks_like_data
from consumer_assets.storage.filesystem import Location

FILE, LINK, SPECIAL = "file", "symbolic link", "special file"

BOOKKEEPING = "bookkeeping (a name starting with _ or .)"
UNLISTED = f"not listed in {MARKER}"
MISNAMED = f"not named {', '.join('*' + s for s in DATA_SUFFIXES[:-1])} or *{DATA_SUFFIXES[-1]}"


@dataclass(frozen=True)
class Entry:
    """One thing below a day folder as listed: a link's own size and mtime, never its target's."""

    size: int
    mtime_ns: int
    kind: str = FILE  # FILE, LINK or SPECIAL
    target: str = ""  # where a link points, to name it when refusing the day


@dataclass(frozen=True)
class SkippedFile:
    """A file of the day folder that is not ingested, and why."""

    name: str  # path relative to the day folder
    reason: str  # BOOKKEEPING, UNLISTED or MISNAMED
    looks_like_data: bool  # its name looks like event data (any case, any compression): lines may be missing


def list_day(folder: Location) -> dict[str, Entry] | None:
    """Everything below the day folder, by its path relative to it, at any depth; None if there is no such folder.

    The folder itself and those above it are the caller's to check (linked_folder): it is listed as named.
    """
    if folder.is_local:
        return _list_local(folder.root)
    selector = pafs.FileSelector(folder.root, recursive=True, allow_not_found=True)
    infos = [i for i in folder.fs.get_file_info(selector) if i.type == pafs.FileType.File]
    if not infos and folder.fs.get_file_info(folder.root).type != pafs.FileType.Directory:
        return None
    prefix = folder.root.rstrip("/") + "/"
    listed = {}
    for info in infos:
        name = info.path.removeprefix(prefix)
        inside = all(part not in ("", ".", "..") for part in name.split("/"))
        listed[name] = Entry(info.size or 0, info.mtime_ns or 0, FILE if inside else SPECIAL)
    return listed


def linked_folder(landing: Location, relative: str) -> tuple[str, str] | None:
    """(URI, target) of the first folder from the landing root down to `relative` that is a symbolic link, if any."""
    if not landing.is_local:
        return None
    parts = relative.split("/")
    for depth in range(1, len(parts) + 1):
        path = landing.child(*parts[:depth])
        try:
            if stat.S_ISLNK(os.lstat(path.root).st_mode):
                return path.uri, os.readlink(path.root)
        except FileNotFoundError:
            return None
    return None


def unfollowed(folder: Location, listed: dict[str, Entry]) -> str | None:
    """Why the day cannot be read because of what it holds besides files, naming the first such entry; else None."""
    odd = sorted(name for name, entry in listed.items() if entry.kind != FILE)
    if not odd:
        return None
    name, entry = odd[0], listed[odd[0]]
    more = f" (and {len(odd) - 1} more like it)" if len(odd) > 1 else ""
    if entry.kind == LINK:
        what = f"is a symbolic link (to {entry.target}); links are never followed in the landing zone"
    elif folder.is_local:
        what = "is not a regular file (a FIFO, socket or device); only regular files are read"
    else:
        what = "is a key whose name leads out of the day's prefix (an empty, '.' or '..' part)"
    return f"{folder.child(name).uri} {what}{more}: deliver the file itself, or remove it"


def skipped_files(listed: dict[str, Entry], ingested: set[str], marker_lists: bool) -> tuple[SkippedFile, ...]:
    """Every file of the listing but the marker that is not ingested, with its reason, in name order.

    `marker_lists`: a JSON marker chose the files, so whatever it does not name is left out by it.
    """
    skipped = []
    for name in sorted(set(listed) - ingested - {MARKER}):
        reason = BOOKKEEPING if is_bookkeeping(name) else UNLISTED if marker_lists else MISNAMED
        skipped.append(SkippedFile(name, reason, looks_like_data(name)))
    return tuple(skipped)


def open_file(folder: Location, name: str) -> BinaryIO:
    """The file's bytes as stored, buffered. On a local disk each folder and the file itself are opened without
    following a link, so a link put in place after the day was listed is refused all the same."""
    if not folder.is_local:
        return io.BufferedReader(folder.fs.open_input_stream(folder.path(name), compression=None))
    *folders, base = name.split("/")
    at = os.open(folder.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in folders:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=at)
            os.close(at)
            at = inner
        # O_NONBLOCK: a FIFO would otherwise block the open until someone writes to it.
        fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=at)
    finally:
        os.close(at)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{folder.child(name).uri} is not a regular file")
    return open(fd, "rb")  # the caller closes it


def _list_local(root: str) -> dict[str, Entry] | None:
    try:
        if not stat.S_ISDIR(os.stat(root).st_mode):
            return None
    except FileNotFoundError:
        return None
    listed: dict[str, Entry] = {}
    pending = [""]
    while pending:
        relative = pending.pop()
        try:
            entries = list(os.scandir(os.path.join(root, relative)))
        except FileNotFoundError:  # a producer removed a folder (its task attempts) while it was walked
            continue
        for entry in entries:
            name = f"{relative}/{entry.name}" if relative else entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):
                pending.append(name)
            elif stat.S_ISLNK(info.st_mode):
                listed[name] = Entry(info.st_size, info.st_mtime_ns, LINK, os.readlink(entry.path))
            else:
                kind = FILE if stat.S_ISREG(info.st_mode) else SPECIAL
                listed[name] = Entry(info.st_size, info.st_mtime_ns, kind)
    return listed
