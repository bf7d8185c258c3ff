"""Expand a day's sessions into timed events, keeping each profile's cart in step.

A session is laid out as [entry][browse x n][product_view, size_select, cart_add] x items][tail]:
the tail is what the session is for (a cart view, a checkout with one `order` per cart item, a
cart removal, a return). Everything is built per segment with numpy and scattered into place by
each event's position inside its session, so the cost grows with events, not with Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from consumer_assets.events.schema import ACTION_INDEX
from consumer_assets.simulation.catalog import Catalog
from consumer_assets.simulation.model import CART_SLOTS, ProfileState
from consumer_assets.simulation.params import DAY_MS, HOURLY_WEIGHT, ShopParams
from consumer_assets.simulation.sessions import (
    ABANDON,
    BROWSE_MEAN,
    CART_VISIT,
    CHECKOUT,
    IS_ARTICLE,
    RETURN,
    TO_CART,
    SessionPlan,
    sample_types,
)

_HOUR_CDF = np.cumsum(HOURLY_WEIGHT) / HOURLY_WEIGHT.sum()
_ITEM_TYPES = np.array([ACTION_INDEX[n] for n in ("product_view", "size_select", "cart_add")], np.int8)


@dataclass
class DayEvents:
    """One day's clean events as arrays, sorted by time."""

    profile: np.ndarray  # int32 profile index
    session: np.ndarray  # int32 session index within the day
    ms: np.ndarray  # int64 milliseconds since midnight UTC
    event_type: np.ndarray  # int8 index into ACTION_TYPES
    article: np.ndarray  # int32 article index, -1 for events without an article

    def __len__(self) -> int:
        return len(self.ms)


def _runs(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs of the given lengths: the run of every element and its position inside the run."""
    owner = np.repeat(np.arange(len(counts)), counts)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, within


def render_sessions(
    plan: SessionPlan,
    state: ProfileState,
    favourite: np.ndarray,
    catalog: Catalog,
    rng: np.random.Generator,
    p: ShopParams,
) -> DayEvents:
    """Events of the planned sessions; updates state.cart, cart_adds and return_article."""
    ns, kind, prof = len(plan.kind), plan.kind, plan.profile
    focus = np.where(rng.random(ns) < 0.6, favourite[prof], catalog.sample_category(rng, ns))
    n_browse = rng.poisson(BROWSE_MEAN[kind])
    adds = state.cart_adds[prof]
    n_items = np.select(
        [kind == TO_CART, kind == CART_VISIT, kind == CHECKOUT],
        [1 + rng.binomial(2, 0.3, ns), rng.binomial(1, 0.3, ns), rng.binomial(1, 0.15, ns)],
        0,
    )
    # An impulse checkout (or one whose cart is empty) puts an item in the cart first.
    n_items = np.where((kind == CHECKOUT) & (plan.impulse | (adds == 0)), np.maximum(n_items, 1), n_items)
    item_session, item_j = _runs(n_items)
    item_article = catalog.sample(rng, focus[item_session], len(item_session))

    # The cart: returns read the last order before today's checkouts overwrite it.
    is_return = np.flatnonzero(kind == RETURN)
    returned = state.return_article[prof[is_return]]
    p_item = prof[item_session]
    state.cart[p_item, (state.cart_adds[p_item] + item_j) % CART_SLOTS] = item_article
    np.add.at(state.cart_adds, prof, n_items)  # a profile has at most one cart-changing session a day
    abandon = np.flatnonzero((kind == ABANDON) & (state.cart_adds[prof] >= 2))
    p_ab = prof[abandon]
    removed = state.cart[p_ab, (state.cart_adds[p_ab] - 1) % CART_SLOTS]
    state.cart_adds[p_ab] -= 1
    checkout = np.flatnonzero(kind == CHECKOUT)
    p_co = prof[checkout]
    n_order = np.clip(state.cart_adds[p_co], 1, CART_SLOTS)
    order_owner, order_j = _runs(n_order)
    # The order holds the last n_order items added (the ring keeps at most CART_SLOTS).
    p_order = p_co[order_owner]
    ordered = state.cart[p_order, (state.cart_adds[p_order] - n_order[order_owner] + order_j) % CART_SLOTS]
    first = np.cumsum(n_order) - n_order
    state.return_article[p_co] = ordered[first]
    state.cart_adds[p_co] = 0
    cancel = rng.random(len(checkout)) < 0.03

    # Tail lengths, then every session's offset in the day's event arrays.
    n_tail = np.zeros(ns, np.int64)
    n_tail[kind == TO_CART] = rng.random(int((kind == TO_CART).sum())) < 0.6
    n_tail[kind == CART_VISIT] = rng.random(int((kind == CART_VISIT).sum())) < 0.15
    n_tail[abandon] = 1
    n_tail[checkout] = 2 + n_order + cancel
    n_tail[is_return] = 1
    length = 1 + n_browse + 3 * n_items + n_tail
    offset = np.cumsum(length) - length
    tail_at = offset + 1 + n_browse + 3 * n_items
    total = int(length.sum())
    etype = np.empty(total, np.int8)
    article = np.full(total, -1, np.int32)

    etype[offset] = sample_types("entry", kind, rng)
    b_session, b_j = _runs(n_browse)
    b_pos = offset[b_session] + 1 + b_j
    b_type = sample_types("browse", kind[b_session], rng)
    etype[b_pos] = b_type
    art = np.flatnonzero(IS_ARTICLE[b_type])
    # Most article views stay in the session's focus category; some wander across the shop.
    in_focus = rng.random(len(art)) < 0.8
    article[b_pos[art[in_focus]]] = catalog.sample(rng, focus[b_session[art[in_focus]]], int(in_focus.sum()))
    article[b_pos[art[~in_focus]]] = catalog.sample(rng, None, int((~in_focus).sum()))
    i_pos = (offset[item_session] + 1 + n_browse[item_session] + 3 * item_j)[:, None] + np.arange(3)
    etype[i_pos] = _ITEM_TYPES
    article[i_pos] = item_article[:, None]

    small_gap = np.zeros(total, bool)
    etype[tail_at[(kind == TO_CART) & (n_tail > 0)]] = ACTION_INDEX["cart_view"]
    # A checkout started but not finished: the cart stage hesitating.
    etype[tail_at[(kind == CART_VISIT) & (n_tail > 0)]] = ACTION_INDEX["checkout_start"]
    etype[tail_at[abandon]] = ACTION_INDEX["cart_remove"]
    article[tail_at[abandon]] = removed
    etype[tail_at[is_return]] = ACTION_INDEX["return"]
    article[tail_at[is_return]] = returned
    etype[tail_at[checkout]] = ACTION_INDEX["cart_view"]
    etype[tail_at[checkout] + 1] = ACTION_INDEX["checkout_start"]
    o_pos = tail_at[checkout][order_owner] + 2 + order_j
    etype[o_pos] = ACTION_INDEX["order"]
    article[o_pos] = ordered
    small_gap[o_pos[order_j > 0]] = True  # one order, many items: logged milliseconds apart
    c_pos = tail_at[checkout[cancel]] + 2 + n_order[cancel]
    etype[c_pos] = ACTION_INDEX["order_cancel"]
    article[c_pos] = ordered[first[cancel] + n_order[cancel] - 1]

    return _place_in_day(prof, offset, length, etype, article, small_gap, rng, p)


def _place_in_day(
    prof: np.ndarray,
    offset: np.ndarray,
    length: np.ndarray,
    etype: np.ndarray,
    article: np.ndarray,
    small_gap: np.ndarray,
    rng: np.random.Generator,
    p: ShopParams,
) -> DayEvents:
    """Session start times from the diurnal profile, seconds-to-minutes gaps, all kept inside the day."""
    ns, total = len(offset), len(etype)
    session = np.repeat(np.arange(ns, dtype=np.int32), length)
    gap = np.minimum(rng.lognormal(np.log(p.gap_median_s * 1000), p.gap_sigma, total), p.gap_max_s * 1000)
    gap = np.where(small_gap, rng.integers(1, 60, total), gap.astype(np.int64) + 500)
    gap[offset] = 0
    since_start = np.cumsum(gap)
    since_start -= since_start[offset][session]
    duration = since_start[offset + length - 1]
    hour = np.searchsorted(_HOUR_CDF, rng.random(ns), side="right")
    start = hour * 3_600_000 + rng.integers(0, 3_600_000, ns)
    # A session that would run past midnight starts earlier instead: every event stays in its day.
    start = np.clip(start, 0, np.maximum(DAY_MS - 1 - duration, 0))
    ms = np.minimum(start[session] + since_start, DAY_MS - 1)
    order = np.argsort(ms, kind="stable")
    return DayEvents(prof[session][order], session[order], ms[order], etype[order], article[order])
