"""Errors of the simulator. Each carries a short machine-readable `code`."""


class SimulatorError(Exception):
    """Base of every simulator error."""

    code = "simulator_error"


class UnknownScenario(SimulatorError, KeyError):
    """No scenario is registered under the requested name."""

    code = "unknown_scenario"


class RegionNotFound(SimulatorError, LookupError):
    """The requested municipality is not in the loaded region file."""

    code = "region_not_found"


class PlacementFailed(SimulatorError):
    """No point satisfying the placement constraints was found within the attempt budget."""

    code = "placement_failed"


class TransportError(SimulatorError):
    """The transport could not connect or deliver a message."""

    code = "transport_error"


class PublishTimeout(TransportError):
    """A QoS 1 publish was not acknowledged by the broker within the timeout."""

    code = "publish_timeout"


class BackendError(SimulatorError):
    """The backend's REST API refused a request or could not be reached."""

    code = "backend_error"
