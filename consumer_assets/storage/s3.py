"""Where S3 is, as one value: delta-rs options, the pyarrow filesystem and the boto3 client all come from it.

Credentials are deliberately not part of it: every client finds them through the standard AWS
chain (environment, shared config and profiles, instance or task roles), so they are never held
in code, config or logs. The endpoint of an S3-compatible store and the region are the settings.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs as pafs

# pyarrow needs some region to sign with; AWS's own default.
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Settings:
    """The endpoint (None: AWS itself) and region (None: the client's own choice) of the S3 in use."""

    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> S3Settings:
        """Explicit values, else the standard AWS variables as they are now.

        The endpoint from `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, the region from `AWS_REGION`
        or `AWS_DEFAULT_REGION`; `environ` defaults to the process environment.
        """
        env = os.environ if environ is None else environ
        return cls(
            endpoint_url=endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            region=region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        )

    def delta_options(self) -> dict[str, str]:
        """delta-rs storage options.

        Credentials are left to delta-rs' own AWS chain; an http:// endpoint (MinIO, moto) must be
        allowed explicitly. Commits use S3 conditional writes (put-if-absent), so no lock service
        is needed.
        """
        # Bounded retries: an unreachable endpoint fails the call within a minute, and the asset's
        # retry policy (with its own backoff) decides what happens next.
        options = {"aws_conditional_put": "etag", "max_retries": "4", "retry_timeout": "60s"}
        if self.region:
            options["AWS_REGION"] = self.region
        if self.endpoint_url:
            options["AWS_ENDPOINT_URL"] = self.endpoint_url
            if self.endpoint_url.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        return options

    def filesystem(self) -> pafs.S3FileSystem:
        """A pyarrow S3 filesystem at this endpoint and region."""
        kwargs: dict[str, Any] = {"region": self.region or DEFAULT_REGION}
        if self.endpoint_url:
            endpoint = self.endpoint_url
            parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
            kwargs["endpoint_override"] = parsed.netloc
            kwargs["scheme"] = parsed.scheme
        return pafs.S3FileSystem(**kwargs)

    def client(self) -> Any:
        """A boto3 S3 client at this endpoint and region (for conditional puts, which pyarrow cannot do)."""
        return _client(self)


# One client per settings value: creating one costs tens of milliseconds, and boto3 clients are
# safe to share between threads.
@functools.cache
def _client(settings: S3Settings) -> Any:
    import boto3  # only where S3 artifacts are written; a local store never loads it

    return boto3.session.Session().client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region)
