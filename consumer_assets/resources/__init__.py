"""Dagster resources: storage (tables, artifacts) and the IO manager that loads inputs, landing zone, Spark."""
