"""Which sessions a profile has on a day, given its latent transition, and what they are made of.

The latent chain (model.py) decides what a profile does with its day; this module decides what that
looks like in a tracking stream. A profile in a buying mission browses intensely, one that moves to
the cart stage adds items, an order comes out of a checkout, a dormant profile sometimes drops by
without intent (the noise a model must learn to ignore), and a scheduled return shows up on its day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from consumer_assets.events.schema import ACTION_INDEX, ACTION_TYPES, ARTICLE_EVENT_TYPES
from consumer_assets.simulation.model import CART, DORMANT, DORMANT_CART, LAPSED, MISSION, ORDERED

CASUAL, RESEARCH, TO_CART, CART_VISIT, ABANDON, CHECKOUT, RETURN = range(7)
KIND_NAMES: tuple[str, ...] = ("casual", "research", "to_cart", "cart_visit", "abandon", "checkout", "return")

# First event of a session, per kind: how people arrive.
_ENTRY: tuple[dict[str, float], ...] = (
    {"home_view": 0.45, "newsletter_click": 0.15, "search": 0.15, "category_view": 0.25},
    {"search": 0.4, "home_view": 0.3, "category_view": 0.2, "newsletter_click": 0.1},
    {"search": 0.35, "home_view": 0.35, "category_view": 0.2, "login": 0.1},
    {"cart_view": 0.4, "home_view": 0.3, "login": 0.3},
    {"cart_view": 1.0},
    {"home_view": 0.35, "cart_view": 0.35, "login": 0.3},
    {"login": 0.8, "home_view": 0.2},
)
_RESEARCH_MIX = {
    "search": 0.12,
    "category_view": 0.14,
    "product_view": 0.36,
    "image_zoom": 0.12,
    "size_select": 0.07,
    "review_read": 0.07,
    "recommendation_click": 0.05,
    "wishlist_add": 0.05,
    "wishlist_remove": 0.02,
}
# The free browsing part of a session, per kind (events drawn independently from the mix).
_BROWSE: tuple[dict[str, float], ...] = (
    {
        "home_view": 0.1,
        "category_view": 0.2,
        "product_view": 0.42,
        "search": 0.06,
        "recommendation_click": 0.1,
        "image_zoom": 0.06,
        "wishlist_add": 0.03,
        "review_read": 0.03,
    },
    _RESEARCH_MIX,
    _RESEARCH_MIX,
    {
        "cart_view": 0.2,
        "product_view": 0.35,
        "image_zoom": 0.12,
        "size_select": 0.1,
        "review_read": 0.05,
        "wishlist_add": 0.06,
        "wishlist_remove": 0.04,
        "search": 0.08,
    },
    {"product_view": 0.6, "category_view": 0.4},
    {"product_view": 0.5, "image_zoom": 0.15, "size_select": 0.15, "review_read": 0.1, "search": 0.1},
    {"product_view": 0.6, "category_view": 0.2, "home_view": 0.2},
)
BROWSE_MEAN = np.array([4.5, 12.0, 6.0, 3.5, 0.5, 2.5, 1.0])
IS_ARTICLE = np.array([name in ARTICLE_EVENT_TYPES for name in ACTION_TYPES])


def _flat_cdf(mixes: tuple[dict[str, float], ...]) -> np.ndarray:
    """Row k of the mixes as k + CDF, flattened: one searchsorted samples every row at once."""
    table = np.zeros((len(mixes), len(ACTION_TYPES)))
    for k, mix in enumerate(mixes):
        for name, weight in mix.items():
            table[k, ACTION_INDEX[name]] = weight
    cdf = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    return (np.arange(len(mixes))[:, None] + cdf).ravel()


_ENTRY_CDF = _flat_cdf(_ENTRY)
_BROWSE_CDF = _flat_cdf(_BROWSE)


def sample_types(which: Literal["entry", "browse"], kind: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Event types (ACTION_TYPES indices) for sessions of the given kinds, from the entry or browse mix."""
    flat = _ENTRY_CDF if which == "entry" else _BROWSE_CDF
    n_types = len(ACTION_TYPES)
    pos = np.searchsorted(flat, kind + rng.random(len(kind)), side="right")
    return np.minimum(pos - kind.astype(np.int64) * n_types, n_types - 1).astype(np.int8)


@dataclass
class SessionPlan:
    profile: np.ndarray  # int32 profile index per session
    kind: np.ndarray  # int8 session kind
    impulse: np.ndarray  # bool: a checkout by a profile that was not in the cart stage adds an item first


def plan_sessions(
    prev: np.ndarray, new: np.ndarray, returning: np.ndarray, casual: np.ndarray, rng: np.random.Generator
) -> SessionPlan:
    """Sessions of the day.

    prev/new: latent states before and after the day (new may be ORDERED); returning: a scheduled
    return falls on this day; casual: today's probability of a casual visit while dormant.
    """
    profiles: list[np.ndarray] = []
    kinds: list[int] = []

    def add(select: np.ndarray, kind: int, p: float = 1.0, extra: float = 0.0) -> None:
        # Selected profiles (mask or indices) get a session with probability p, a second with `extra`.
        idx = np.flatnonzero(select) if select.dtype == bool else select
        if p < 1.0:
            idx = idx[rng.random(len(idx)) < p]
        if extra > 0.0:
            idx = np.concatenate([idx, idx[rng.random(len(idx)) < extra]])
        profiles.append(idx)
        kinds.append(kind)

    dormant_before = (prev == DORMANT) | (prev == DORMANT_CART)
    stays_dormant = dormant_before & ((new == DORMANT) | (new == DORMANT_CART))
    idx = np.flatnonzero(stays_dormant)
    add(idx[rng.random(len(idx)) < casual[idx]], CASUAL, extra=0.15)
    add((prev == LAPSED) & (new == DORMANT), CASUAL, p=0.5)
    add((prev == MISSION) & (new == DORMANT), CASUAL, p=0.3)
    add((new == MISSION) & (prev != MISSION), RESEARCH, extra=0.4)
    add((new == MISSION) & (prev == MISSION), RESEARCH, p=0.75, extra=0.2)
    add((new == CART) & (prev != CART), TO_CART)
    add((new == CART) & (prev != CART) & (prev != MISSION), RESEARCH, p=0.35)
    add((new == CART) & (prev == CART), CART_VISIT, p=0.55)
    add((new == DORMANT_CART) & (prev == CART), ABANDON, p=0.35)
    add((new == ORDERED) & (prev != CART), RESEARCH, p=0.5)
    add(new == ORDERED, CHECKOUT)
    add(returning, RETURN)
    sizes = [len(p) for p in profiles]
    profile = np.concatenate(profiles).astype(np.int32)
    kind = np.repeat(np.array(kinds, np.int8), sizes)
    impulse = (kind == CHECKOUT) & (prev[profile] != CART)
    return SessionPlan(profile, kind, impulse)
