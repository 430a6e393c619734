from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from backend.settings import Settings


def test_defaults_are_the_embedded_ones(monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("SCHILDWACHT_"):
            monkeypatch.delenv(key)
    s = Settings()
    assert s.database.url.startswith("sqlite") and s.redis.url is None and s.broker.embedded


def test_nested_environment(monkeypatch):
    monkeypatch.setenv("SCHILDWACHT_BROKER__PORT", "11883")
    monkeypatch.setenv("SCHILDWACHT_PROTOCOL__TOPIC_ROOT", "pilot/v1")
    monkeypatch.setenv("SCHILDWACHT_API__ADMIN_TOKEN", "a-real-long-random-token")
    s = Settings()
    assert s.broker.port == 11883 and s.protocol.topic_root == "pilot/v1"
    assert "a-real" not in repr(s)  # secrets never print


@pytest.mark.parametrize("value", ["changeme", "secret", " admin "])
def test_placeholder_secrets_fail_fast(monkeypatch, value):
    monkeypatch.setenv("SCHILDWACHT_API__ADMIN_TOKEN", value)
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()


@pytest.mark.parametrize("name", ["SHARE_GROUP", "ALARM_SHARE_GROUP"])
def test_a_share_group_is_a_generated_secret(monkeypatch, name):
    """Mosquitto lets any client join a shared subscription whose name it knows: a name that
    could be guessed is refused, a generated one is taken and never printed, none is a plain
    subscription."""
    variable = f"SCHILDWACHT_BROKER__{name}"
    for guessable in ("fix", "schildwacht-fix", "a/b" * 12, "#" * 30):
        monkeypatch.setenv(variable, guessable)
        with pytest.raises(ValidationError, match="generated secret"):
            Settings()
    generated = secrets.token_urlsafe(24)
    monkeypatch.setenv(variable, generated)
    s = Settings()
    assert getattr(s.broker, name.lower()).get_secret_value() == generated
    assert generated not in repr(s)
    monkeypatch.setenv(variable, "")
    assert getattr(Settings().broker, name.lower()) is None


def test_pings_are_kept_longer_than_a_fix_may_arrive_late(monkeypatch):
    monkeypatch.setenv("SCHILDWACHT_PINGS__RETENTION_DAYS", "10")
    assert Settings().pings.retention_days == 10
    monkeypatch.setenv("SCHILDWACHT_PROTOCOL__MAX_LATE_S", str(10 * 86_400))
    with pytest.raises(ValidationError, match="retention_days must be longer"):
        Settings()


def test_the_engine_dates_a_fix_ahead_as_the_pipeline_does(monkeypatch):
    monkeypatch.setenv("SCHILDWACHT_PROTOCOL__MAX_FIX_AHEAD_S", "20")
    with pytest.raises(ValidationError, match="max_ahead_s must not be less"):
        Settings()
    monkeypatch.setenv("SCHILDWACHT_GEOFENCE__MAX_AHEAD_S", "20")
    assert Settings().geofence.to_config().max_ahead_s == 20


def test_a_clock_correction_outlives_the_fixes_it_pairs(monkeypatch):
    monkeypatch.setenv("SCHILDWACHT_GEOFENCE__PARTNER_MAX_AGE_S", "700")
    with pytest.raises(ValidationError, match="clock_correction_max_age_s must not be less"):
        Settings()
    monkeypatch.setenv("SCHILDWACHT_PROTOCOL__CLOCK_CORRECTION_MAX_AGE_S", "700")
    assert Settings().protocol.clock_correction_max_age_s == 700


def test_one_names_failures_cannot_fill_its_addresss_count(monkeypatch):
    """A desk behind one NAT address shares that address's count: the count per name must
    slow down one account's failures before they fill it."""
    login = Settings().console.login
    assert login.free_failures < login.free_failures_per_address
    monkeypatch.setenv("SCHILDWACHT_CONSOLE__LOGIN__FREE_FAILURES", "20")
    monkeypatch.setenv("SCHILDWACHT_CONSOLE__LOGIN__FREE_FAILURES_PER_ADDRESS", "20")
    with pytest.raises(ValidationError, match="free_failures must be lower"):
        Settings()
    monkeypatch.setenv("SCHILDWACHT_CONSOLE__LOGIN__FREE_FAILURES_PER_ADDRESS", "21")
    assert Settings().console.login.free_failures_per_address == 21


def test_a_setting_that_none_turns_off_is_turned_off_by_null(monkeypatch):
    monkeypatch.setenv("SCHILDWACHT_GEOFENCE__REPEAT_CONFIRMATIONS", "null")
    monkeypatch.setenv("SCHILDWACHT_GEOFENCE__IMMEDIATE_DEPTH_M", "null")
    config = Settings().geofence.to_config()
    assert config.repeat_confirmations is None and config.immediate_depth_m is None
    monkeypatch.setenv("SCHILDWACHT_GEOFENCE__REPEAT_CONFIRMATIONS", "1")  # one is no repeat
    with pytest.raises(ValidationError):
        Settings()


def test_every_geofence_setting_reaches_the_engine(monkeypatch):
    """The settings tree holds every field of the engine's configuration, with its default."""
    from dataclasses import fields

    from geofences import GeofenceConfig

    assert Settings().geofence.to_config() == GeofenceConfig()
    names = {f.name for f in fields(GeofenceConfig)}
    assert names <= set(Settings().geofence.model_dump())
    monkeypatch.setenv("SCHILDWACHT_GEOFENCE__PARTNER_UNKNOWN_HOLD_S", "600")
    assert Settings().geofence.to_config().partner_unknown_hold_s == 600


def test_every_token_lifetime_is_bounded(monkeypatch):
    """A token's default lifetime is one an administrator may ask for, and no maximum goes
    beyond two years."""
    tokens = Settings().tokens
    assert (tokens.lifetime_s, tokens.max_lifetime_s) == (90 * 86_400, 365 * 86_400)
    monkeypatch.setenv("SCHILDWACHT_TOKENS__LIFETIME_S", str(400 * 86_400))
    with pytest.raises(ValidationError, match="lifetime_s must not exceed"):
        Settings()
    monkeypatch.setenv("SCHILDWACHT_TOKENS__MAX_LIFETIME_S", str(400 * 86_400))
    assert Settings().tokens.lifetime_s == 400 * 86_400
    monkeypatch.setenv("SCHILDWACHT_TOKENS__MAX_LIFETIME_S", str(3 * 365 * 86_400))
    with pytest.raises(ValidationError):
        Settings()
