"""Settings from the environment: a bad value names the variable to fix."""

from __future__ import annotations

import pytest

from market.settings import SettingsError, load


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MARKET_WEBHOOK_PRIVATE_HOSTS", "maybe"),
        ("MARKET_BID_PATH", "fastest"),
        ("MARKET_BID_RATE", "lots"),
        ("DATABASE_URL", "no-scheme-here"),
        ("MARKET_MODE", "staging"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load({variable: value, "MARKET_SECRET_KEY": "k" * 40})


def test_good_values_are_read() -> None:
    settings = load(
        {
            "MARKET_WEBHOOK_PRIVATE_HOSTS": "true",
            "MARKET_BID_PATH": "direct",
            "MARKET_SECRET_KEY": "k" * 40,
        }
    )
    assert settings.webhook_private_hosts is True and settings.bid_path == "direct"
    defaults = load({"MARKET_SECRET_KEY": "k" * 40})
    assert defaults.webhook_private_hosts is False and defaults.bid_path == "writer"
    assert defaults.mode == "production" and not defaults.sandbox
    assert load({"MARKET_MODE": "sandbox", "MARKET_SECRET_KEY": "k" * 40}).sandbox
