"""Dagster resources: storage IO manager, landing zone, Spark."""
