"""The tracking-event simulator: a stand-in for the fashion shop, with an exact ground truth.

`ShopSimulator` lives profiles through days of a latent shopping chain (model.py) and renders
them as tracking events; `simulate_to_landing` writes those days to the landing zone as gzip
JSON Lines (optionally with bad records and the per-day ground truth).
"""

from __future__ import annotations

from consumer_assets.simulation.corrupt import CORRUPTION_KINDS, UNKNOWN_EVENT_TYPES
from consumer_assets.simulation.landing import LandedDay, simulate_to_landing
from consumer_assets.simulation.params import Sale, ShopParams
from consumer_assets.simulation.simulator import ShopSimulator, order_labels, ordered_profiles

__all__ = [
    "CORRUPTION_KINDS",
    "UNKNOWN_EVENT_TYPES",
    "LandedDay",
    "Sale",
    "ShopParams",
    "ShopSimulator",
    "order_labels",
    "ordered_profiles",
    "simulate_to_landing",
]
