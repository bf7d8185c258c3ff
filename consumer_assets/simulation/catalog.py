"""The article catalog: brands, categories, lognormal prices, daily new arrivals, popularity sampling."""

from __future__ import annotations

import copy

import numpy as np
import pyarrow as pa

from consumer_assets.simulation.params import CATEGORIES, ShopParams

CATEGORY_NAMES: tuple[str, ...] = tuple(name for name, _, _ in CATEGORIES)
CATEGORY_WEIGHTS = np.array([w for _, w, _ in CATEGORIES], float) / sum(w for _, w, _ in CATEGORIES)
_CATEGORY_LOG_PRICE = np.log([price for _, _, price in CATEGORIES])
_NULL_FRAGMENT_ARRAY = pa.array(['"article_id":null,"brand_id":null,"category":null,"price":null'], pa.large_string())


class Catalog:
    """All articles ever released; sampling favours popular and recently released ones."""

    def __init__(self, rng: np.random.Generator, p: ShopParams) -> None:
        self.p = p
        # Brands are Zipf-popular: a few big labels carry most of the assortment.
        brand_weights = 1.0 / np.arange(1, p.brands + 1) ** 0.9
        self.brand_weights = brand_weights / brand_weights.sum()
        self.category = np.empty(0, np.int16)
        self.brand = np.empty(0, np.int16)
        self.price_cents = np.empty(0, np.int64)
        self.popularity = np.empty(0)
        self.release_day = np.empty(0, np.int32)
        # Arrow text of the articles, one chunk per release batch, joined on demand: a day adds
        # ~160 articles, so only those are ever formatted in Python.
        self._batches: list[tuple[pa.Array, ...]] = []
        self._joined: tuple[pa.Array, ...] | None = None
        # The initial assortment was released over the past year.
        n0 = p.initial_articles
        self._add(rng, n0, rng.integers(-365, 0, n0).astype(np.int32))
        self._cdf = np.empty(0)

    def __len__(self) -> int:
        return len(self.category)

    def _add(self, rng: np.random.Generator, n: int, release_day: np.ndarray) -> None:
        category = rng.choice(len(CATEGORIES), n, p=CATEGORY_WEIGHTS).astype(np.int16)
        brand = rng.choice(self.p.brands, n, p=self.brand_weights).astype(np.int16)
        euros = np.maximum(np.round(np.exp(_CATEGORY_LOG_PRICE[category] + rng.normal(0, 0.35, n))), 3)
        # Shop prices end in .95, .99 or .00.
        cents = (euros * 100 - rng.choice(np.array([5, 1, 0]), n, p=[0.5, 0.3, 0.2])).astype(np.int64)
        first = len(self.category)
        self.category = np.concatenate([self.category, category])
        self.brand = np.concatenate([self.brand, brand])
        self.price_cents = np.concatenate([self.price_cents, cents])
        self.popularity = np.concatenate([self.popularity, rng.lognormal(0.0, 1.2, n)])
        self.release_day = np.concatenate([self.release_day, release_day])
        ids = [f"A{i:07d}" for i in range(first, first + n)]
        brands = [f"B{b:04d}" for b in brand.tolist()]
        names = [CATEGORY_NAMES[c] for c in category.tolist()]
        fragments = [
            f'"article_id":"{a}","brand_id":"{b}","category":"{c}","price":{m // 100}.{m % 100:02d}'
            for a, b, c, m in zip(ids, brands, names, cents.tolist(), strict=True)
        ]
        self._batches.append(
            (
                pa.array(fragments, pa.large_string()),
                pa.array(ids, pa.string()),
                pa.array(brands, pa.string()),
                pa.array(names, pa.string()),
                pa.array(cents / 100.0, pa.float64()),
            )
        )
        self._joined = None

    def open_day(self, t: int, rng: np.random.Generator) -> None:
        """Release day t's new articles and prepare the day's sampling weights."""
        if t >= 0:
            n_new = int(rng.poisson(self.p.new_articles_per_day))
            self._add(rng, n_new, np.full(n_new, t, np.int32))
        age = t - self.release_day
        # New arrivals get the shop's front page: a boost that fades over about ten days.
        novelty = 1.0 + self.p.new_article_boost * np.exp(-np.maximum(age, 0) / self.p.new_article_days)
        weight = np.where(age >= 0, self.popularity * novelty, 0.0)
        # Articles ordered by category, so each category is one contiguous stretch of one CDF.
        self._order = np.argsort(self.category, kind="stable")
        self._cdf = np.cumsum(weight[self._order])
        bounds = np.searchsorted(self.category[self._order], np.arange(len(CATEGORIES) + 1))
        self._cat_lo = np.concatenate([[0.0], self._cdf])[bounds[:-1]]
        self._cat_hi = np.concatenate([[0.0], self._cdf])[bounds[1:]]

    def sample(self, rng: np.random.Generator, category: np.ndarray | None, n: int) -> np.ndarray:
        """n article indices by popularity, within `category` (per draw) or across the shop if None."""
        u = rng.random(n)
        if category is None:
            target = u * self._cdf[-1]
        else:
            lo, hi = self._cat_lo[category], self._cat_hi[category]
            target = lo + u * (hi - lo)
        pos = np.minimum(np.searchsorted(self._cdf, target, side="right"), len(self._cdf) - 1)
        return self._order[pos].astype(np.int32)

    def sample_category(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(len(CATEGORIES), n, p=CATEGORY_WEIGHTS).astype(np.int16)

    def _columns(self) -> tuple[pa.Array, ...]:
        if self._joined is None:
            self._joined = tuple(pa.concat_arrays(list(col)) for col in zip(*self._batches, strict=True))
        return self._joined

    def fragments(self) -> pa.LargeStringArray:
        """JSON members of every article, plus the all-null members at index len(self)."""
        return pa.concat_arrays([self._columns()[0], _NULL_FRAGMENT_ARRAY])

    def columns(self) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        """article_id, brand_id, category, price per article (for the Arrow event table)."""
        _, article, brand, category, price = self._columns()
        return article, brand, category, price

    def copy(self) -> Catalog:
        """An independent copy: arrays are only ever replaced, never written in place."""
        other = copy.copy(self)
        other._batches = list(self._batches)
        return other
