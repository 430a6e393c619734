"""Errors of the console."""


class ConsoleError(Exception):
    pass


class CatalogueIncomplete(ConsoleError):
    """A message catalogue lacks keys the default language has."""
