"""Ingestion of the landing zone, without Dagster.

`landing` finds a complete day and streams its files in blocks of lines, `validate` holds the
rules (line by line), `fastpath` applies them vectorised with the same outcome, `timestamps`
parses ISO-8601 in bulk, `dedupe` drops repeated event ids, `ingest` runs a day, `layout` splits
the kept events into raw_events' profile-bucket files.
"""
