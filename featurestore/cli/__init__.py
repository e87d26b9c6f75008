"""The ``featurestore`` command line; the only part of the package that prints."""

from featurestore.cli._main import main

__all__ = ["main"]
