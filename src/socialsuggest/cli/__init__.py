"""The ``socialsuggest`` command."""

from socialsuggest.cli.main import app

__all__ = ["app"]
