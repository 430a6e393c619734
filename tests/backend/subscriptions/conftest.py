"""Fixtures for webhook delivery tests (tests/support/webhooks.py)."""

from tests.support.webhooks import receivers, webhooks  # noqa: F401 - fixtures
