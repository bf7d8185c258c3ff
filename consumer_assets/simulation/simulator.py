"""The shop: profiles living through days of the latent chain, rendered as tracking events.

Randomness is keyed by day: day k (k = 0 on `start`) draws from SeedSequence([seed, k]), so a
day's events depend on the seed, the start date and the days before it, never on how many days
follow. Traits, the initial catalog and the burn-in days have their own tagged seed sequences.
"""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.simulation.catalog import CATEGORY_WEIGHTS, Catalog
from consumer_assets.simulation.events import render_sessions
from consumer_assets.simulation.model import (
    CART,
    CART_SLOTS,
    DORMANT,
    NO_LIFT,
    ORDERED,
    DayLift,
    day_rates,
    draw_traits,
    initial_state,
    order_probability,
    sample_next,
)
from consumer_assets.simulation.params import NO_RETURN, WEEKDAY_FACTOR, ShopParams
from consumer_assets.simulation.render import DayRenderer, hex16, mix64
from consumer_assets.simulation.sessions import plan_sessions

# Second words of the non-daily seed sequences, far above any day index (and never 0: numpy's
# SeedSequence treats [seed] and [seed, 0] alike).
_TRAITS_TAG, _IDS_TAG, _BURN_IN_TAG = 0xFFFF_FFF1, 0xFFFF_FFF2, 0xFFFF_FFF3


class ShopSimulator:
    """Simulates `profiles` anonymous shoppers day by day from `start`, after a burn-in."""

    def __init__(self, profiles: int, seed: int, start: dt.date, params: ShopParams | None = None) -> None:
        if profiles < 1 or seed < 0:
            raise ValueError(f"need profiles >= 1 and seed >= 0, got {profiles=} {seed=}")
        self.params = params or ShopParams()
        self.seed, self.start, self.stream = seed, start, 0
        rng = np.random.default_rng(np.random.SeedSequence([seed, _TRAITS_TAG]))
        self.catalog = Catalog(rng, self.params)
        self.traits = draw_traits(profiles, rng, CATEGORY_WEIGHTS, self.params)
        self.state = initial_state(self.traits, self.params.wake, rng)
        keys = np.random.SeedSequence([seed, _IDS_TAG]).generate_state(3, np.uint64)
        self._keys = (int(keys[0]), int(keys[1]))
        # Anonymous profile ids: a keyed bijection of the index, stable across days.
        self._profile_ids = hex16(mix64(np.arange(profiles, dtype=np.uint64) ^ keys[2]))
        self.profile_ids: pa.StringArray = self._profile_ids.cast(pa.string())
        self._t = -self.params.burn_in_days
        while self._t < 0:
            self._advance(render=False)

    @property
    def day(self) -> dt.date:
        """The last simulated date (the day before `start` until the first step)."""
        return self.start + dt.timedelta(days=self._t - 1)

    def step(self) -> pa.Table:
        """Simulate the next day; its clean events as a RAW_EVENTS_SCHEMA table sorted by ts."""
        return self.step_day().table()

    def step_day(self) -> DayRenderer:
        """Simulate the next day; its events ready to render as a table or as landing JSON lines."""
        renderer = self._advance(render=True)
        assert renderer is not None
        return renderer

    def day_rng(self, purpose: int) -> np.random.Generator:
        """A generator for the last simulated day: 0 chain, 1 catalog, 2 sessions, 3 free (corruption)."""
        return self._rngs(self._t - 1)[purpose]

    def ground_truth(self, *, with_sale: bool = True) -> pa.Table:
        """P(at least one order in the 7 days after `day`) per profile, exact given the full state.

        The truth knows the calendar: a sale in those 7 days counts. with_sale=False gives what the
        same state would lead to without the sale, i.e. the scores of a perfect model of the old regime.
        """
        t = self._t
        lifts = [self._lift(t + k) for k in range(7)] if with_sale else None
        p = order_probability(self.traits, self.state, t, self._weekday(t), self.params, lifts=lifts)
        return pa.table({"profile_id": self.profile_ids, "p_order_7d": pa.array(p, pa.float64())})

    def fork(self, stream: int) -> ShopSimulator:
        """A copy in the same state whose future days draw from another random stream (what-ifs)."""
        if stream < 1:
            raise ValueError("fork streams start at 1; stream 0 is the simulator's own")
        other = copy.copy(self)
        other.state, other.catalog, other.stream = self.state.copy(), self.catalog.copy(), stream
        return other

    def _weekday(self, t: int) -> int:
        return (self.start.weekday() + t) % 7

    def _lift(self, t: int) -> DayLift:
        sale = self.params.sale
        return NO_LIFT if sale is None else sale.factors(self.start + dt.timedelta(days=t))

    def _rngs(self, t: int) -> list[np.random.Generator]:
        if t < 0:
            entropy = [self.seed, _BURN_IN_TAG, -t]
        else:
            entropy = [self.seed, t] if self.stream == 0 else [self.seed, t, self.stream]
        return [np.random.default_rng(s) for s in np.random.SeedSequence(entropy).spawn(4)]

    def _advance(self, render: bool) -> DayRenderer | None:
        t, p, st, n = self._t, self.params, self.state, len(self.state.code)
        chain_rng, catalog_rng, session_rng, _ = self._rngs(t)
        self.catalog.open_day(t, catalog_rng)
        lift = self._lift(t)
        rates = day_rates(self.traits, st, t, self._weekday(t), p, lift)
        prev = st.code.copy()
        new = sample_next(prev, rates, chain_rng.random(n), p)
        returning = st.return_due == t
        st.last_return[returning] = t
        st.return_due[returning] = NO_RETURN
        buyers = np.flatnonzero(new == ORDERED)
        st.last_order[buyers] = t
        schedule = (st.return_due[buyers] == NO_RETURN) & (chain_rng.random(len(buyers)) < self.traits.returns[buyers])
        st.return_due[buyers[schedule]] = t + chain_rng.integers(*p.return_delay, int(schedule.sum()))
        st.code = np.where(new == ORDERED, DORMANT, new).astype(np.int8)
        self._t += 1
        if not render:
            self._burn_in_cart(prev, new, session_rng)
            return None
        casual = np.minimum(self.traits.casual * WEEKDAY_FACTOR[self._weekday(t)] * lift[1], 0.9)
        plan = plan_sessions(prev, new, returning, casual, session_rng)
        events = render_sessions(plan, st, self.traits.category, self.catalog, session_rng, p)
        date = self.start + dt.timedelta(days=t)
        return DayRenderer(events, t, date, self._keys, self._profile_ids, self.catalog)

    def _burn_in_cart(self, prev: np.ndarray, new: np.ndarray, rng: np.random.Generator) -> None:
        """Keep carts and returnable articles plausible during burn-in, without rendering events."""
        st = self.state
        adding = np.flatnonzero((new == CART) & (prev != CART))
        st.cart[adding, st.cart_adds[adding] % CART_SLOTS] = self.catalog.sample(rng, None, len(adding))
        st.cart_adds[adding] += 1
        buyers = np.flatnonzero(new == ORDERED)
        fallback = self.catalog.sample(rng, None, len(buyers))
        last = st.cart[buyers, (st.cart_adds[buyers] - 1) % CART_SLOTS]
        st.return_article[buyers] = np.where(st.cart_adds[buyers] > 0, last, fallback)
        st.cart_adds[buyers] = 0


def ordered_profiles(events: pa.Table, start: dt.date, end: dt.date) -> set[str]:
    """Profiles with at least one `order` event on days start..end (inclusive, UTC)."""
    day = pc.cast(events["ts"], pa.date32())
    keep = pc.and_(
        pc.equal(events["event_type"], "order"),
        pc.and_(pc.greater_equal(day, pa.scalar(start)), pc.less_equal(day, pa.scalar(end))),
    )
    return set(pc.unique(events["profile_id"].filter(keep)).to_pylist())


def order_labels(profile_ids: pa.Array, events: pa.Table, start: dt.date, end: dt.date) -> np.ndarray:
    """Boolean label per profile id: ordered on days start..end."""
    buyers = pa.array(sorted(ordered_profiles(events, start, end)), pa.string())
    return pc.is_in(profile_ids, value_set=buyers).to_numpy(zero_copy_only=False)
