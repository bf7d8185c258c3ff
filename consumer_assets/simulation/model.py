"""The latent shopper model: a daily Markov chain per profile, and its exact 7-day order probability.

Every profile is, at the end of each day, in one of five latent states:

    lapsed        no longer visits; wakes up with a small daily probability
    dormant       visits now and then without intent (casual browsing: noise in the event stream)
    dormant_cart  dormant, but items from an abandoned cart stage still pull it back to the cart
    mission       looking for something to buy (intense browsing sessions)
    cart          has chosen items and is deciding (cart sessions, checkout starts)

Each day t every profile makes one transition, to a transient state or to `ordered` (an order
placed during day t, after which it is dormant again). The transition rows are functions of:

- fixed per-profile traits: mission rate lambda, conversion kappa, churn q (see `draw_traits`);
- the weekday of t (`WEEKDAY_FACTOR`) and the day's calendar lift (a sale, params.Sale: conversion
  and activity multipliers, (1, 1) on ordinary days);
- known, deterministic state: days since the last order (refractory factor
  1 - a exp(-(t - last_order) / tau)) and days since the last return, including a return already
  scheduled for a future day (boost 1 + b exp(-(t - r) / tau_b) for r <= t). Both decays count
  as exactly 0 beyond 40 tau, in the simulation and the ground truth alike.

`rows_from` is the single source of those rows: the simulator samples from it (with `_leave` as
a shortcut for the many profiles that stay put) and the ground truth recurses through it, so both
describe the same chain; the tests check the two against Monte-Carlo rollouts.

Ground truth. With the full state at the end of day D known, let x_0 be the one-hot vector of the
profile's latent state. For k = 1..7 (day t = D + k), with P_t the 5 x 6 row matrix of day t,

    x_k[j]   = sum_s x_{k-1}[s] P_t[s, j]          for the five transient states j
    a_k      = a_{k-1} + sum_s x_{k-1}[s] P_t[s, ordered]

so `ordered` is made absorbing and P(at least one order in D+1..D+7) = a_7 = 1 - sum_j x_7[j].
Absorbing is exact: until the first order nothing that enters P_t changes at random (last order
stays, scheduled returns happen on their day whatever the state), and after it the question is
answered. All of it is vectorised over profiles: 7 days x 5 source states of (6, n) arrays.
At 1M profiles it takes about 2 s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from consumer_assets.simulation.params import NEVER, NO_RETURN, WEEKDAY_FACTOR, ShopParams

LAPSED, DORMANT, DORMANT_CART, MISSION, CART, ORDERED = range(6)
STATE_NAMES: tuple[str, ...] = ("lapsed", "dormant", "dormant_cart", "mission", "cart")
CART_SLOTS = 4  # the cart keeps the last 4 items added since the last order
# A day's calendar multipliers (conversion, activity): a sale raises both; ordinary days are (1, 1),
# and multiplying by 1.0 is exact, so ordinary days give bit-identical rates.
DayLift = tuple[float, float]
NO_LIFT: DayLift = (1.0, 1.0)


@dataclass
class Traits:
    """Fixed per-profile propensities (one array entry per profile)."""

    mission: np.ndarray  # base daily probability of starting a buying mission
    conversion: np.ndarray  # kappa in [0, 1]: how readily missions and carts turn into orders
    casual: np.ndarray  # daily probability of a casual visit while dormant
    returns: np.ndarray  # probability that an order leads to a return
    churn: np.ndarray  # daily probability of lapsing while dormant
    category: np.ndarray  # favourite category (index into CATEGORIES)

    def take(self, idx: np.ndarray) -> Traits:
        return Traits(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})


@dataclass
class ProfileState:
    """Everything about a profile that changes over time."""

    code: np.ndarray  # int8 latent state, LAPSED..CART
    last_order: np.ndarray  # int32 day index of the last order, NEVER if none
    last_return: np.ndarray  # int32 day index of the last return, NEVER if none
    return_due: np.ndarray  # int32 day index of a scheduled return, NO_RETURN if none
    cart: np.ndarray  # (n, CART_SLOTS) int32 article indices, a ring written at cart_adds % CART_SLOTS
    cart_adds: np.ndarray  # int32 items added since the last order
    return_article: np.ndarray  # int32 article of the last order that a return would send back

    def copy(self) -> ProfileState:
        return ProfileState(**{f.name: getattr(self, f.name).copy() for f in dataclasses.fields(self)})

    def take(self, idx: np.ndarray) -> ProfileState:
        return ProfileState(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})


def draw_traits(n: int, rng: np.random.Generator, category_weights: np.ndarray, p: ShopParams) -> Traits:
    mission = np.minimum(p.mission_median * rng.lognormal(0.0, p.mission_sigma, n), p.mission_max)
    # Profiles with little intent drift away sooner: that makes long silences informative.
    churn = np.clip(p.churn_at_median * (mission / p.mission_median) ** -0.3, 0.001, 0.05)
    return Traits(
        mission=mission,
        conversion=rng.beta(2.0, 2.5, n),
        casual=np.minimum(p.casual_median * rng.lognormal(0.0, p.casual_sigma, n), p.casual_max),
        returns=rng.beta(2.0, 3.0, n),
        churn=churn,
        category=rng.choice(len(category_weights), n, p=category_weights).astype(np.int16),
    )


def initial_state(traits: Traits, wake: float, rng: np.random.Generator) -> ProfileState:
    """A rough start (lapsed at the chain's stationary share, else dormant) that burn-in then mixes."""
    n = len(traits.mission)
    lapsed = rng.random(n) < traits.churn / (traits.churn + wake)
    return ProfileState(
        code=np.where(lapsed, LAPSED, DORMANT).astype(np.int8),
        last_order=np.full(n, NEVER, np.int32),
        last_return=np.full(n, NEVER, np.int32),
        return_due=np.full(n, NO_RETURN, np.int32),
        cart=np.zeros((n, CART_SLOTS), np.int32),
        cart_adds=np.zeros(n, np.int32),
        return_article=np.zeros(n, np.int32),
    )


@dataclass
class DayRates:
    """The per-profile inputs of day t's transition rows."""

    start: np.ndarray  # probability of starting a mission (or buying/carting right away) today
    conversion: np.ndarray  # kappa x weekday factor
    churn: np.ndarray
    wake: float
    revisit: float

    def take(self, idx: np.ndarray) -> DayRates:
        return DayRates(self.start[idx], self.conversion[idx], self.churn[idx], self.wake, self.revisit)


def _decay(t: int, since: np.ndarray, tau: float) -> np.ndarray:
    """exp(-(t - since) / tau), taken as exactly 0 beyond 40 tau (below 5e-18, and cheap to skip)."""
    out = np.zeros(len(since))
    recent = np.flatnonzero(since > t - 40 * tau)
    out[recent] = np.exp(-(t - since[recent]) / tau)
    return out


def day_rates(
    traits: Traits, state: ProfileState, t: int, weekday: int, p: ShopParams, lift: DayLift = NO_LIFT
) -> DayRates:
    wk = WEEKDAY_FACTOR[weekday]
    conversion_lift, activity = lift
    refractory = 1.0 - p.refractory_depth * _decay(t, state.last_order, p.refractory_days)
    # A return due on or before t counts even if it lies after the cut-off: it is scheduled, known state.
    last_return = np.where(state.return_due <= t, state.return_due, state.last_return)
    boost = 1.0 + p.return_boost * _decay(t, last_return, p.return_boost_days)
    start = np.minimum(traits.mission * wk * refractory * boost * activity, 0.6)
    conversion = np.minimum(traits.conversion * wk * conversion_lift, 1.0)
    return DayRates(start, conversion, traits.churn, p.wake * wk * activity, p.cart_revisit * wk * activity)


def rows_from(source: int, r: DayRates, p: ShopParams) -> np.ndarray:
    """Transition probabilities (6, n) to LAPSED..CART, ORDERED for profiles currently in `source`."""
    n = len(r.start)
    rows = np.zeros((6, n))
    if source == LAPSED:
        rows[DORMANT] = r.wake
        rows[LAPSED] = 1.0 - r.wake
        return rows
    if source in (DORMANT, DORMANT_CART):
        rows[ORDERED] = r.start * p.impulse_share * r.conversion
        rows[CART] = r.start * p.direct_cart_share
        rows[MISSION] = r.start - rows[ORDERED] - rows[CART]
        rows[LAPSED] = r.churn
        if source == DORMANT_CART:
            rows[CART] += r.revisit
            rows[DORMANT] = p.cart_forget
        rows[source] = 1.0 - rows.sum(axis=0)
        return rows
    if source == MISSION:
        rows[ORDERED] = p.mission_to_order * r.conversion
        rows[CART] = np.minimum(p.mission_to_cart * (0.5 + r.conversion), 0.5)
        rows[DORMANT] = p.mission_abandon
    else:  # CART
        rows[ORDERED] = p.cart_to_order * r.conversion
        rows[DORMANT_CART] = p.cart_abandon
        rows[MISSION] = p.cart_to_mission
    rows[source] = 1.0 - rows.sum(axis=0)
    return rows


def _leave(source: int, r: DayRates, p: ShopParams) -> np.ndarray:
    """1 - rows_from(source)[source], computed without building the rows (most profiles stay)."""
    if source == LAPSED:
        return np.full(len(r.start), r.wake)
    leave = r.start + r.churn
    return leave + (r.revisit + p.cart_forget) if source == DORMANT_CART else leave


def sample_next(code: np.ndarray, rates: DayRates, u: np.ndarray, p: ShopParams) -> np.ndarray:
    """Next state (LAPSED..CART or ORDERED) per profile: row CDF inverted at u, staying put last.

    Only profiles with u < P(leave) move, and only their rows are built: a day touches a few
    percent of the profiles, so the chain costs little more than one pass over the states.
    """
    nxt = code.astype(np.int8)
    for source in range(5):
        idx = np.flatnonzero(code == source)
        # The small states need no shortcut: all their profiles get rows.
        small = source in (MISSION, CART)
        movers = idx if small else idx[u[idx] < _leave(source, rates.take(idx), p)]
        rows = rows_from(source, rates.take(movers), p)
        targets = np.array([j for j in range(6) if j != source])
        cdf = np.cumsum(rows[targets], axis=0)
        pick = (cdf <= u[movers]).sum(axis=0)
        # u beyond every target's share means staying (only reachable for the small states).
        nxt[movers] = np.where(pick < len(targets), targets[np.minimum(pick, len(targets) - 1)], source)
    return nxt


def order_probability(
    traits: Traits,
    state: ProfileState,
    t0: int,
    weekday0: int,
    p: ShopParams,
    horizon: int = 7,
    lifts: Sequence[DayLift] | None = None,
) -> np.ndarray:
    """Exact P(at least one order on days t0 .. t0+horizon-1) given the state before day t0.

    lifts[k] is the calendar lift of day t0 + k (None: ordinary days throughout).
    """
    n = len(state.code)
    lifts = lifts or [NO_LIFT] * horizon
    if len(lifts) != horizon:
        raise ValueError(f"need one lift per day of the horizon ({horizon}), got {len(lifts)}")
    x = np.zeros((5, n))
    x[state.code, np.arange(n)] = 1.0
    absorbed = np.zeros(n)
    for k in range(horizon):
        rates = day_rates(traits, state, t0 + k, (weekday0 + k) % 7, p, lifts[k])
        nxt = np.zeros((5, n))
        for source in range(5):
            # Only profiles that can be in `source` contribute; early on that is a small share.
            idx = np.flatnonzero(x[source])
            if len(idx) == 0:
                continue
            whole = len(idx) > n // 2
            rows = rows_from(source, rates if whole else rates.take(idx), p)
            mass = x[source] if whole else x[source, idx]
            for target in _TARGETS[source]:
                flow = mass * rows[target]
                into = absorbed if target == ORDERED else nxt[target]
                if whole:
                    into += flow
                else:
                    into[idx] += flow
        x = nxt
    return np.clip(absorbed, 0.0, 1.0)


# The states each state can move to (its non-zero entries in rows_from).
_TARGETS: dict[int, tuple[int, ...]] = {
    LAPSED: (LAPSED, DORMANT),
    DORMANT: (LAPSED, DORMANT, MISSION, CART, ORDERED),
    DORMANT_CART: (LAPSED, DORMANT, DORMANT_CART, MISSION, CART, ORDERED),
    MISSION: (DORMANT, MISSION, CART, ORDERED),
    CART: (DORMANT_CART, MISSION, CART, ORDERED),
}
