"""Storage (no Dagster): URIs to filesystems, Delta tables, checksummed artifacts, the model registry."""
