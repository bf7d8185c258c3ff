"""Real-time scoring: one profile's probability from the histories state of a day plus the events posted.

Plain Python, numpy, pyarrow and torch; no Dagster and no HTTP (the service around it is
consumer_assets.service). `posted` validates posted events by the raw_events rules, `lookup` finds a
profile's row in a day's state held in memory, `score` turns state row + events into the history as of
the prediction instant and scores it with the batch path's own functions, `snapshot` loads the model in
force and a committed state from storage and swaps in newer ones as they appear.
"""
