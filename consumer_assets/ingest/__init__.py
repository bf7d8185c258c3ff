"""Ingestion of the landing zone, without Dagster.

`listing` lists a day folder and opens its files without following links, `landing` finds a
complete day and streams its files in blocks of lines (`lines` cuts them, and cuts lines over the
length limit), `delivery` says when a day is complete and what was delivered (for the sensor),
`validate` holds the rules (line by line), `fastpath` applies them vectorised with the same
outcome, `timestamps` parses ISO-8601 in bulk, `dedupe` drops repeated event ids, `quarantine`
hands the rejected lines on in bounded batches, `ingest` runs a day, `layout` splits the kept
events into raw_events' profile-bucket files.
"""
