"""Cut a stream of decompressed bytes into blocks of whole lines, with a limit on the length of a line.

A line longer than the limit is never held whole: its first KEPT_BYTES are kept (they become its
quarantined raw_line), the rest is read a chunk at a time up to its newline and dropped, only
counted. It stays one line of its block, so the numbers of the lines after it are those of the
file: de-duplication reads lines again by number, through this same reader.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

# A line is at most this long (bytes, without its newline), unless configured otherwise: events
# are a few hundred bytes, and the JSON parsers hold a whole line (several times over) in memory.
MAX_LINE_BYTES = 1 << 20
# Of a line over the limit, the bytes kept as its raw_line.
KEPT_BYTES = 1024
# Lines per block at most: a bad line costs Python objects when quarantined, so a block of tiny
# lines (a day of `{}`) must not hold millions of them. A normal block holds about 16,000 lines.
BLOCK_LINES = 1 << 16
# Read at a time while dropping the rest of a line over the limit.
_SKIP_BYTES = 1 << 20


@dataclass(frozen=True)
class LineBlock:
    """Whole lines of a file: `data` ends with a newline, `ends` are the positions of the newlines.

    A line over the limit appears cut to its first bytes; `too_long` holds its full length.
    """

    first_line: int  # 1-based number of the block's first line in its file
    data: bytes
    ends: np.ndarray
    too_long: Mapping[int, int] = field(default_factory=dict)  # index in the block -> length of the line

    def lines(self) -> list[bytes]:
        starts = np.r_[0, self.ends[:-1] + 1].tolist()
        return [self.data[s:e] for s, e in zip(starts, self.ends.tolist(), strict=True)]

    def too_long_lines(self) -> dict[int, int]:
        """Line number -> full length, of the lines cut to their first bytes."""
        return {self.first_line + i: length for i, length in self.too_long.items()}


def line_blocks(stream: BinaryIO, block_bytes: int, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[LineBlock]:
    """The stream's lines in blocks of about `block_bytes` (at most BLOCK_LINES lines each).

    Memory is a block plus one line up to the limit, whatever the stream holds. A last line
    without a newline is a line all the same.
    """
    if max_line_bytes < 1:
        raise ValueError(f"max_line_bytes must be positive, got {max_line_bytes}")
    keep = min(KEPT_BYTES, max_line_bytes)
    first_line = 1
    while data := stream.read(block_bytes):
        last: dict[int, int] = {}  # the block's last line, if cut while reading
        if data[-1:] != b"\n":  # complete the line the read cut, reading no further than the limit
            start = data.rfind(b"\n") + 1
            room = max_line_bytes + 1 - (len(data) - start)
            if room > 0:
                data += stream.readline(room)
            if data[-1:] != b"\n":
                length = len(data) - start
                if length > max_line_bytes:
                    length += _skip_line(stream)
                    data = data[: start + keep]
                    last = {start: length}
                data += b"\n"
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 0x0A)
        too_long = {int(np.searchsorted(ends, start)): length for start, length in last.items()}
        lengths = np.diff(ends, prepend=-1) - 1
        if (lengths > max_line_bytes).any():  # whole lines over the limit within the read itself
            data, ends, cut = _cut(data, ends, lengths, max_line_bytes, keep)
            too_long |= cut
        yield from _by_count(first_line, data, ends, too_long)
        first_line += len(ends)


def _skip_line(stream: BinaryIO) -> int:
    """Read up to and including the next newline (or the end), a chunk at a time; the bytes before it."""
    skipped = 0
    while piece := stream.readline(_SKIP_BYTES):
        if piece[-1:] == b"\n":
            return skipped + len(piece) - 1
        skipped += len(piece)
    return skipped


def _cut(
    data: bytes, ends: np.ndarray, lengths: np.ndarray, max_line_bytes: int, keep: int
) -> tuple[bytes, np.ndarray, dict[int, int]]:
    """The block with each line over the limit cut to its first `keep` bytes, and those lines' full lengths."""
    over = np.flatnonzero(lengths > max_line_bytes).tolist()
    starts = np.r_[0, ends[:-1] + 1]
    pieces, at = [], 0
    for line in over:
        start = int(starts[line])
        pieces += [data[at : start + keep], b"\n"]
        at = int(ends[line]) + 1
    pieces.append(data[at:])
    cut = b"".join(pieces)
    return cut, np.flatnonzero(np.frombuffer(cut, np.uint8) == 0x0A), {line: int(lengths[line]) for line in over}


def _by_count(first_line: int, data: bytes, ends: np.ndarray, too_long: dict[int, int]) -> Iterator[LineBlock]:
    """The block as it is, or in pieces of BLOCK_LINES lines."""
    if len(ends) <= BLOCK_LINES:
        yield LineBlock(first_line, data, ends, too_long)
        return
    for a in range(0, len(ends), BLOCK_LINES):
        b = min(a + BLOCK_LINES, len(ends))
        offset = int(ends[a - 1]) + 1 if a else 0
        own = {i - a: length for i, length in too_long.items() if a <= i < b}
        yield LineBlock(first_line + a, data[offset : int(ends[b - 1]) + 1], ends[a:b] - offset, own)
