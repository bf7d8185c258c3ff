"""Turn a storage URI (`file:///...`, a plain path, or `s3://bucket/prefix`) into a pyarrow filesystem.

S3 settings come from the standard AWS chain at call time (never at import): credentials from the
SDK's default provider chain (environment, shared config, instance role), the endpoint of any
S3-compatible store from `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, the region from `AWS_REGION`
or `AWS_DEFAULT_REGION`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs


@dataclass(frozen=True)
class Location:
    """A filesystem and a root path on it; `uri` is how people and other tools name it."""

    fs: pafs.FileSystem
    root: str
    uri: str

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts if p)])

    def child(self, *parts: str) -> Location:
        return Location(self.fs, self.path(*parts), "/".join([self.uri.rstrip("/"), *parts]))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)


def s3_filesystem() -> pafs.S3FileSystem:
    """An S3 filesystem configured from the standard AWS environment, read now."""
    kwargs: dict[str, object] = {
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs["endpoint_override"] = parsed.netloc
        kwargs["scheme"] = parsed.scheme
    return pafs.S3FileSystem(**kwargs)


def delta_storage_options() -> dict[str, str]:
    """delta-rs settings for S3, from the same standard variables, read now.

    Credentials are left to delta-rs' own AWS chain (environment, profiles, instance roles); an
    http:// endpoint (MinIO, moto) must be allowed explicitly. Commits use S3 conditional writes
    (put-if-absent), so no lock service is needed.
    """
    options = {"aws_conditional_put": "etag"}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["AWS_REGION"] = region
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options


def resolve(uri: str | os.PathLike[str]) -> Location:
    """Resolve a storage URI; a plain or `file://` path is made absolute, `s3a://` read as `s3://`."""
    text = os.fspath(uri)
    parsed = urlparse(text)
    if parsed.scheme in ("s3", "s3a"):  # s3a:// is Hadoop's name for the same objects
        if not parsed.netloc:
            raise ValueError(f"S3 URI {text!r} names no bucket; expected s3://bucket/prefix")
        root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return Location(s3_filesystem(), root, f"s3://{root}")
    if parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path) if parsed.scheme == "file" else text).expanduser().resolve()
        return Location(pafs.LocalFileSystem(), local.as_posix(), local.as_uri())
    raise ValueError(f"unsupported storage URI {text!r}: use file:///path, a plain path or s3://bucket/prefix")
