"""Errors of the device domain; mapped to HTTP in `backend.api.errors`."""


class DeviceError(Exception):
    pass


class DeviceNotFound(DeviceError):
    pass


class DeviceConflict(DeviceError):
    """E.g. a device id or an OwnTracks user/device pair that is already registered."""


class DeviceNameReserved(DeviceError):
    """A device id or OwnTracks user that is one of the broker's service accounts."""
