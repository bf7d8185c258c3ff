"""Turn a storage URI (`file:///...`, a plain path, or `s3://bucket/prefix`) into a pyarrow filesystem.

An S3 location carries the `S3Settings` it was resolved with, so everything that reaches it (pyarrow,
delta-rs, the boto3 client of the artifact pointers) talks to the same endpoint. Without explicit
settings the standard AWS variables are read at call time, never at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs

from consumer_assets.storage.s3 import S3Settings


@dataclass(frozen=True)
class Location:
    """A filesystem and a root path on it; `uri` is how people and other tools name it.

    `s3` is where an S3 location's store is (None on a local disk).
    """

    fs: pafs.FileSystem
    root: str
    uri: str
    s3: S3Settings | None = None

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts if p)])

    def child(self, *parts: str) -> Location:
        return Location(self.fs, self.path(*parts), "/".join([self.uri.rstrip("/"), *parts]), self.s3)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def storage_options(self) -> dict[str, str]:
        """delta-rs options for tables here: the S3 settings, none on a local disk."""
        return self.s3.delta_options() if self.s3 is not None else {}


def resolve(uri: str | os.PathLike[str] | Location, s3: S3Settings | None = None) -> Location:
    """Resolve a storage URI; a plain or `file://` path is made absolute, `s3a://` read as `s3://`.

    An S3 URI uses `s3`, by default the standard AWS variables as they are now. A Location is
    already resolved and comes back as it is, with its own settings.
    """
    if isinstance(uri, Location):
        return uri
    text = os.fspath(uri)
    parsed = urlparse(text)
    if parsed.scheme in ("s3", "s3a"):  # s3a:// is Hadoop's name for the same objects
        if not parsed.netloc:
            raise ValueError(f"S3 URI {text!r} names no bucket; expected s3://bucket/prefix")
        root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        settings = s3 if s3 is not None else S3Settings.from_environment()
        return Location(settings.filesystem(), root, f"s3://{root}", settings)
    if parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path) if parsed.scheme == "file" else text).expanduser().resolve()
        return Location(pafs.LocalFileSystem(), local.as_posix(), local.as_uri())
    raise ValueError(f"unsupported storage URI {text!r}: use file:///path, a plain path or s3://bucket/prefix")
