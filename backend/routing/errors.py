"""Errors of the routing package.

- `RoutingError`: base of every error raised here.
  - `PolicyError`: the routing policy file is missing, not YAML, or fails validation; the message
    names the file and every offending field.
  - `UnknownAlertType`: an alert's type has no rule in the policy.
  - `InvalidFacts`: the facts handed to a decision are inconsistent (e.g. a naive datetime, a
    release without a release time).
"""


class RoutingError(Exception):
    """Base of every error of the routing package."""

    code = "routing_error"


class PolicyError(RoutingError):
    """The routing policy cannot be loaded or is invalid."""

    code = "policy_error"


class UnknownAlertType(RoutingError, LookupError):
    """The alert type has no rule in the routing policy."""

    code = "unknown_alert_type"


class InvalidFacts(RoutingError, ValueError):
    """The alert or case facts are inconsistent."""

    code = "invalid_facts"
