"""FastAPI serving: per-org models following the registry, hot reload, hybrid fallback."""
