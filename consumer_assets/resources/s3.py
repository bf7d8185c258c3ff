"""Where S3 is, as Dagster config of the resources that reach it (the storage root and the landing zone)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from consumer_assets.storage.s3 import S3Settings


class S3Config(dg.Config):
    """The endpoint and region of S3; credentials are not config, they come from the standard AWS chain.

    Unset fields fall back to the standard AWS variables, read when the resource is built for a
    run. A deployment with its own variable names sets them with `dg.EnvVar`.
    """

    endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible store (MinIO, Ceph); default $AWS_ENDPOINT_URL_S3, "
        "else $AWS_ENDPOINT_URL, else AWS itself.",
    )
    region: str | None = Field(default=None, description="Region; default $AWS_REGION, else $AWS_DEFAULT_REGION.")

    def settings(self) -> S3Settings:
        """The settings now: this config, else the environment as it is at this call."""
        return S3Settings.from_environment(endpoint_url=self.endpoint_url, region=self.region)
