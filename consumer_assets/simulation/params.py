"""The numbers behind the simulated shop: shopper rates, the calendar, sessions and the catalog.

Everything the simulator draws from lives here so that tuning the shop (more buyers, busier
evenings, longer sessions) is a change of numbers, never of code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000
# A day index far in the past: exp(-(t - NEVER) / tau) underflows to exactly 0, so "never ordered"
# needs no special case in the rate formulas.
NEVER = -(10**6)
# A return due day that never comes (`due <= t` is false for every simulated day).
NO_RETURN = 2**30

# Monday..Sunday multipliers on mission starts, conversions and casual visits: fashion shops sell
# most on Sunday evening and Monday, least on Friday/Saturday when people are out.
WEEKDAY_FACTOR = np.array([1.15, 1.0, 0.95, 0.95, 0.9, 0.85, 1.2])

# Relative session starts per UTC hour: quiet nights, a lunch bump and the evening peak.
HOURLY_WEIGHT = np.array(
    [
        *(0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.5, 1.0, 1.4, 1.5, 1.5, 1.6),  # 00-11 h
        *(1.9, 1.8, 1.6, 1.6, 1.7, 1.9, 2.3, 2.8, 3.2, 3.1, 2.4, 1.3),  # 12-23 h
    ]
)

# name, relative popularity, median price in EUR; prices are lognormal around the median.
CATEGORIES: tuple[tuple[str, float, float], ...] = (
    ("dresses", 8, 59),
    ("tops", 7, 25),
    ("t-shirts", 8, 19),
    ("shirts", 5, 39),
    ("blouses", 4, 35),
    ("knitwear", 5, 49),
    ("sweatshirts", 5, 45),
    ("jackets", 5, 89),
    ("coats", 3, 149),
    ("jeans", 7, 69),
    ("trousers", 5, 55),
    ("skirts", 3, 39),
    ("shorts", 3, 29),
    ("suits", 1, 199),
    ("sportswear", 4, 39),
    ("underwear", 4, 19),
    ("nightwear", 2, 29),
    ("swimwear", 2, 35),
    ("socks", 2, 9),
    ("sneakers", 7, 89),
    ("boots", 4, 119),
    ("sandals", 2, 45),
    ("heels", 2, 79),
    ("bags", 4, 69),
    ("accessories", 4, 25),
)


@dataclass(frozen=True)
class Sale:
    """A regime change: a sale from `start` for `days` days (dates in UTC).

    On sale days conversion (kappa, capped at 1 as always) is multiplied by `lift`, and shopping
    activity (mission starts, casual visits, lapsed profiles waking up, cart revisits) by
    `activity_lift`, the same as `lift` unless given: a sale draws people in and makes them buy.
    The ground truth knows the sale calendar, so it stays exact across the change.
    """

    start: dt.date
    days: int = 7
    lift: float = 3.0
    activity_lift: float | None = None

    def __post_init__(self) -> None:
        activity = self.activity
        # Above these the daily transition rows would stop being distributions.
        if self.days < 1 or not 0.0 < self.lift <= 10.0 or not 0.0 < activity <= 4.0:
            raise ValueError(f"need days >= 1, 0 < lift <= 10, 0 < activity_lift <= 4, got {self}")

    @property
    def activity(self) -> float:
        return self.lift if self.activity_lift is None else self.activity_lift

    @property
    def end(self) -> dt.date:
        """The last sale day (inclusive)."""
        return self.start + dt.timedelta(days=self.days - 1)

    def factors(self, day: dt.date) -> tuple[float, float]:
        """(conversion, activity) multipliers on `day`: (1, 1) outside the sale."""
        return (self.lift, self.activity) if self.start <= day <= self.end else (1.0, 1.0)


@dataclass(frozen=True)
class ShopParams:
    """Rates of the latent shopper chain (per day) and sizes of the rendered behaviour."""

    # Traits: per-profile daily probability of starting a buying mission (lognormal), casual visits.
    mission_median: float = 0.008
    mission_sigma: float = 1.1
    mission_max: float = 0.25
    casual_median: float = 0.04
    casual_sigma: float = 1.2
    casual_max: float = 0.7
    # Lapsing: profiles with little intent lapse faster (churn ~ mission^-0.3); lapsed ones wake slowly.
    churn_at_median: float = 0.006
    wake: float = 0.012
    # Chain rates: see model.py for where each one enters the transition rows.
    impulse_share: float = 0.05  # share of mission starts that buy the same day (x conversion trait)
    direct_cart_share: float = 0.15  # share of mission starts that go straight to the cart
    cart_revisit: float = 0.05  # dormant with a kept cart -> back to the cart stage
    cart_forget: float = 0.08  # dormant with a kept cart -> intent gone
    mission_to_order: float = 0.05
    mission_to_cart: float = 0.28
    mission_abandon: float = 0.25
    cart_to_order: float = 0.40
    cart_abandon: float = 0.20
    cart_to_mission: float = 0.05
    # After an order people have what they wanted for a while: mission starts x (1 - a exp(-d/tau)).
    refractory_depth: float = 0.85
    refractory_days: float = 8.0
    # After a return they look for a replacement: mission starts x (1 + b exp(-d/tau)).
    return_boost: float = 3.0
    return_boost_days: float = 3.0
    return_delay: tuple[int, int] = (6, 16)  # days from order to return, [low, high)
    burn_in_days: int = 60
    # Catalog.
    initial_articles: int = 24_000
    new_articles_per_day: float = 160.0
    brands: int = 200
    new_article_boost: float = 4.0
    new_article_days: float = 10.0
    # Sessions.
    gap_median_s: float = 20.0
    gap_sigma: float = 1.0
    gap_max_s: float = 1800.0
    # Calendar: an optional sale (None: every day ordinary).
    sale: Sale | None = None
