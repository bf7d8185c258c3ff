"""An independent implementation of consumer histories in DuckDB SQL, to check the Spark job against.

It shares nothing with consumer_assets.histories but the constants and the schema it must
produce: window functions pick the tail of each profile, ordered list aggregates build the
sequences, and the id buckets come from zlib's CRC-32 through a Python UDF (or, in the
benchmark, DuckDB's own hash: same work, different numbers).
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Sequence

import duckdb
import pyarrow as pa

from consumer_assets.events.schema import ACTION_TYPES
from consumer_assets.histories.schema import (
    ARTICLE_BUCKETS,
    BRAND_BUCKETS,
    CATEGORY_BUCKETS,
    HISTORIES_SCHEMA,
    MAX_EVENTS,
    MIN_EVENTS,
)
from consumer_assets.windows import ELIGIBILITY_DAYS, HORIZON_DAYS

BucketSql = Callable[[str, int], str]

# last_event_hour stays below 24: the largest float32 under it, 24 - 2**-19, exact as a decimal.
LAST_HOUR = 24 - 2**-19
SqlBuilder = Callable[..., str]  # (files, cut-off day, horizon_days=...) -> SELECT


def crc_bucket_sql(column: str, size: int) -> str:
    """Bucket via the `crc_bucket` UDF that `connect` registers."""
    return f"crc_bucket({column}, {size})"


def native_bucket_sql(column: str, size: int) -> str:
    """Bucket via DuckDB's own hash: what a DuckDB user would write (the numbers differ from CRC-32)."""
    return f"CASE WHEN coalesce({column}, '') = '' THEN 0 ELSE 1 + (hash({column}) % {size - 1})::INTEGER END"


def _crc_bucket(value: str | None, size: int) -> int:
    # No id (null or "") is bucket 0.
    return 0 if not value else 1 + zlib.crc32(value.encode("utf-8")) % (size - 1)


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {threads}")
    con.create_function("crc_bucket", _crc_bucket, ["VARCHAR", "INTEGER"], "INTEGER", null_handling="special")
    return con


def histories_sql(
    files: Sequence[str], cutoff: dt.date, bucket_sql: BucketSql = crc_bucket_sql, horizon_days: int = HORIZON_DAYS
) -> str:
    """SELECT the histories as of the end of `cutoff` from raw_events Parquet files, by profile_id:
    straight from every event of the horizon, with no state."""
    hi = dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    hi_ms = int(hi.timestamp() * 1000)
    lo_ms = hi_ms - horizon_days * 86_400_000
    recent_ms = hi_ms - ELIGIBILITY_DAYS * 86_400_000
    today = (cutoff - dt.date(1970, 1, 1)).days
    file_list = ", ".join(f"'{f}'" for f in files)
    actions = ", ".join(f"('{name}', {i})" for i, name in enumerate(ACTION_TYPES))
    order = "ORDER BY t, event_id"
    return f"""
    WITH ev AS (
        SELECT profile_id, event_id, epoch_ms(ts) AS t, event_type, article_id, brand_id, category, price,
            (epoch_ms(ts) // 86400000)::INTEGER AS day
        FROM read_parquet([{file_list}])
        WHERE epoch_ms(ts) >= {lo_ms} AND epoch_ms(ts) < {hi_ms}
    ),
    summary AS (
        SELECT profile_id,
            count(*) AS n_window,
            count(*) FILTER (WHERE t >= {recent_ms}) AS n_recent,
            count(DISTINCT day) AS active_days,
            {today} - min(day) AS since_first,
            count(*) FILTER (WHERE event_type = 'order') AS n_orders,
            count(*) FILTER (WHERE event_type = 'return') AS n_returns,
            {today} - max(day) FILTER (WHERE event_type = 'order') AS since_order,
            {today} - max(day) FILTER (WHERE event_type = 'return') AS since_return
        FROM ev GROUP BY profile_id
        HAVING count(*) FILTER (WHERE t >= {recent_ms}) >= {MIN_EVENTS}
    ),
    ranked AS (
        SELECT ev.*,
            row_number() OVER (PARTITION BY profile_id ORDER BY t DESC, event_id DESC) AS from_end,
            -- Over the whole horizon: a truncated history's first event keeps its real gap.
            t - lag(t, 1, t) OVER (PARTITION BY profile_id {order}) AS gap_ms
        FROM ev
    ),
    kept AS (
        SELECT k.*, a.idx AS type_idx
        FROM ranked k JOIN (VALUES {actions}) a(name, idx) ON k.event_type = a.name
        WHERE from_end <= {MAX_EVENTS}
    ),
    seq AS (
        SELECT
            profile_id,
            count(*)::INTEGER AS n_events,
            list(type_idx::TINYINT {order}) AS event_type,
            list(ln(1 + gap_ms / 1000.0::DOUBLE)::FLOAT {order}) AS log_dt,
            list({bucket_sql("article_id", ARTICLE_BUCKETS)} {order}) AS article_bucket,
            list({bucket_sql("brand_id", BRAND_BUCKETS)} {order}) AS brand_bucket,
            list({bucket_sql("category", CATEGORY_BUCKETS)} {order}) AS category_bucket,
            list(ln(1 + greatest(coalesce(price, 0.0), 0.0))::FLOAT {order}) AS log_price,
            (({hi_ms} - max(t)) / 3600000.0::DOUBLE)::FLOAT AS hours_since_last_event,
            (isodow(TIMESTAMPTZ '{hi.isoformat()}') - 1)::TINYINT AS cutoff_weekday,
            least(((max(t) % 86400000) / 3600000.0::DOUBLE)::FLOAT, {LAST_HOUR}::FLOAT) AS last_event_hour
        FROM kept
        GROUP BY profile_id
    )
    SELECT seq.profile_id, n_events, n_window::INTEGER AS n_window_events, event_type, log_dt, article_bucket,
        brand_bucket, category_bucket, log_price, hours_since_last_event, cutoff_weekday, last_event_hour,
        n_recent::INTEGER AS n_recent_events, active_days::INTEGER AS active_days,
        since_first::INTEGER AS days_since_first_event, n_orders::INTEGER AS n_orders,
        n_returns::INTEGER AS n_returns, since_order::INTEGER AS days_since_last_order,
        since_return::INTEGER AS days_since_last_return
    FROM seq JOIN summary USING (profile_id)
    ORDER BY profile_id
    """


def list_histories_sql(
    files: Sequence[str], cutoff: dt.date, bucket_sql: BucketSql = crc_bucket_sql, horizon_days: int = HORIZON_DAYS
) -> str:
    """The same SELECT written for speed, as a DuckDB user would: one ordered list per profile.

    No window functions: each profile's events are aggregated once, in order, as a list of
    structs (the horizon's summaries in the same GROUP BY), sliced to the newest MAX_EVENTS and
    taken apart with list lambdas. About twice as fast as histories_sql on the benchmark, so the
    Spark job is compared with a fair DuckDB.
    """
    hi = dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    hi_ms = int(hi.timestamp() * 1000)
    lo_ms = hi_ms - horizon_days * 86_400_000
    recent_ms = hi_ms - ELIGIBILITY_DAYS * 86_400_000
    today = (cutoff - dt.date(1970, 1, 1)).days
    order_idx, return_idx = ACTION_TYPES.index("order"), ACTION_TYPES.index("return")
    file_list = ", ".join(f"'{f}'" for f in files)
    actions = ", ".join(f"('{name}', {i})" for i, name in enumerate(ACTION_TYPES))
    return f"""
    WITH ev AS (
        SELECT profile_id, event_id, epoch_ms(ts) AS t, (epoch_ms(ts) // 86400000)::INTEGER AS day,
            a.idx::TINYINT AS ty,
            {bucket_sql("article_id", ARTICLE_BUCKETS)} AS ab,
            {bucket_sql("brand_id", BRAND_BUCKETS)} AS bb,
            {bucket_sql("category", CATEGORY_BUCKETS)} AS cb,
            ln(1 + greatest(coalesce(price, 0.0), 0.0))::FLOAT AS lp
        FROM read_parquet([{file_list}]) JOIN (VALUES {actions}) a(name, idx) ON event_type = a.name
        WHERE epoch_ms(ts) >= {lo_ms} AND epoch_ms(ts) < {hi_ms}
    ),
    whole AS (
        -- Eligibility counts the recent days only; the summaries and the list cover the horizon.
        SELECT profile_id, count(*)::INTEGER AS n_window,
            count(*) FILTER (WHERE t >= {recent_ms})::INTEGER AS n_recent,
            count(DISTINCT day)::INTEGER AS active_days,
            ({today} - min(day))::INTEGER AS since_first,
            count(*) FILTER (WHERE ty = {order_idx})::INTEGER AS n_orders,
            count(*) FILTER (WHERE ty = {return_idx})::INTEGER AS n_returns,
            ({today} - max(day) FILTER (WHERE ty = {order_idx}))::INTEGER AS since_order,
            ({today} - max(day) FILTER (WHERE ty = {return_idx}))::INTEGER AS since_return,
            list(struct_pack(t, ty, ab, bb, cb, lp) ORDER BY t, event_id) AS w
        FROM ev GROUP BY profile_id HAVING count(*) FILTER (WHERE t >= {recent_ms}) >= {MIN_EVENTS}
    ),
    g AS (
        -- prev_t: the newest event cut off a truncated history, for its first gap.
        SELECT * EXCLUDE (w), w[-{MAX_EVENTS}:] AS s,
            CASE WHEN n_window > {MAX_EVENTS} THEN w[-{MAX_EVENTS + 1}].t END AS prev_t
        FROM whole
    )
    SELECT
        profile_id,
        len(s)::INTEGER AS n_events,
        n_window AS n_window_events,
        list_transform(s, lambda x: x.ty) AS event_type,
        list_transform(s, lambda x, i: CASE WHEN i = 1 THEN coalesce(ln(1 + (x.t - prev_t) / 1000.0::DOUBLE), 0.0)
            ELSE ln(1 + (x.t - s[i - 1].t) / 1000.0::DOUBLE) END::FLOAT) AS log_dt,
        list_transform(s, lambda x: x.ab) AS article_bucket,
        list_transform(s, lambda x: x.bb) AS brand_bucket,
        list_transform(s, lambda x: x.cb) AS category_bucket,
        list_transform(s, lambda x: x.lp) AS log_price,
        (({hi_ms} - s[-1].t) / 3600000.0::DOUBLE)::FLOAT AS hours_since_last_event,
        (isodow(TIMESTAMPTZ '{hi.isoformat()}') - 1)::TINYINT AS cutoff_weekday,
        least(((s[-1].t % 86400000) / 3600000.0::DOUBLE)::FLOAT, {LAST_HOUR}::FLOAT) AS last_event_hour,
        n_recent AS n_recent_events, active_days, since_first AS days_since_first_event, n_orders, n_returns,
        since_order AS days_since_last_order, since_return AS days_since_last_return
    FROM g
    """


def oracle_histories(
    files: Sequence[str], cutoff: dt.date, sql: SqlBuilder | None = None, horizon_days: int = HORIZON_DAYS
) -> pa.Table:
    """The histories as of the end of `cutoff`, in HISTORIES_SCHEMA (by default with histories_sql)."""
    if not files:
        return HISTORIES_SCHEMA.empty_table()
    con = connect()
    try:
        query = (sql or histories_sql)(files, cutoff, horizon_days=horizon_days)
        return con.sql(query).to_arrow_table().cast(HISTORIES_SCHEMA)
    finally:
        con.close()
