"""Errors of the supervision package.

- `SupervisionError`: base of every error raised here.
  - `NotGroupable`: a signal that is not a health signal (a panic alarm, a tamper) was handed to
    the health grouping. Urgent alerts never pass through grouping.
  - `InvalidThresholds`: supervision thresholds that contradict each other.
"""


class SupervisionError(Exception):
    """Base of every error of the supervision package."""

    code = "supervision_error"


class NotGroupable(SupervisionError, ValueError):
    """Only health signals may be grouped; urgent alerts are never grouped, delayed or suppressed."""

    code = "not_groupable"


class InvalidThresholds(SupervisionError, ValueError):
    """The supervision thresholds contradict each other."""

    code = "invalid_thresholds"
