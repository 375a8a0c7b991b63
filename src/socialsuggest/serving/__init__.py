"""FastAPI serving: per-org models following the registry, hot reload, hybrid fallback.

Served requests and feedback are logged to the lake's ``logs`` zone by
:class:`RequestLog` (catalogued and erasable like any other personal data).
"""

from socialsuggest.serving.logs import RequestLog

__all__ = ["RequestLog"]
