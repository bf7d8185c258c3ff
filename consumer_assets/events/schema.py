"""What a tracking event is: the action types, the landing-zone record and the raw_events schema.

The simulator writes records of this shape, raw_events validates against it, and the
histories encode `ACTION_TYPES` by position, so their order is part of every trained model:
append new types at the end, never reorder.
"""

from __future__ import annotations

import pyarrow as pa

# The paper's setup: about 19 action types, one-hot encoded by the model.
ACTION_TYPES: tuple[str, ...] = (
    "home_view",
    "search",
    "category_view",
    "product_view",
    "image_zoom",
    "size_select",
    "review_read",
    "recommendation_click",
    "newsletter_click",
    "login",
    "wishlist_add",
    "wishlist_remove",
    "cart_add",
    "cart_remove",
    "cart_view",
    "checkout_start",
    "order",
    "order_cancel",
    "return",
)
ACTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(ACTION_TYPES)}

# Event types that are about one article: they carry article_id, brand_id, category and price.
ARTICLE_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "product_view",
        "image_zoom",
        "size_select",
        "review_read",
        "recommendation_click",
        "wishlist_add",
        "wishlist_remove",
        "cart_add",
        "cart_remove",
        "order",
        "order_cancel",
        "return",
    }
)

# One landing record (JSON object per line). `ts` is ISO-8601 UTC with a trailing "Z".
LANDING_FIELDS: dict[str, type | tuple[type, ...]] = {
    "event_id": str,
    "profile_id": str,
    "session_id": str,
    "ts": str,
    "event_type": str,
    "article_id": str,
    "brand_id": str,
    "category": str,
    "price": (int, float),
}
REQUIRED_FIELDS: tuple[str, ...] = ("event_id", "profile_id", "session_id", "ts", "event_type")
# Ids that must not be empty either: every event with an empty id would share that one id (all but
# the first a duplicate) or, for profile_id, make one profile of strangers.
NON_EMPTY_FIELDS: tuple[str, ...] = ("event_id", "profile_id")

# raw_events as stored: one Parquet dataset partitioned by day (the `date` lives in the path).
RAW_EVENTS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("profile_id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("article_id", pa.string()),
        pa.field("brand_id", pa.string()),
        pa.field("category", pa.string()),
        pa.field("price", pa.float64()),
    ]
)

# raw_events_quarantine: every landed record that did not make it into raw_events, and why.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line_number", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("raw_line", pa.binary(), nullable=False),
    ]
)
