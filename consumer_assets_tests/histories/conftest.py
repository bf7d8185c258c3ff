"""Shops older than the horizon, built once per session (support.history_states.old_shop)."""

from __future__ import annotations

import pytest

from consumer_assets.windows import HORIZON_DAYS
from consumer_assets_tests.support.history_states import OldShop, old_shop

# A short horizon keeps most tests fast; one test runs on the default horizon too.
SHORT_HORIZON = 40


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> OldShop:
    return old_shop(tmp_path_factory.mktemp("shop"), SHORT_HORIZON)


@pytest.fixture(scope="session")
def shop_default_horizon(tmp_path_factory: pytest.TempPathFactory) -> OldShop:
    return old_shop(tmp_path_factory.mktemp("shop180"), HORIZON_DAYS, profiles=150)
