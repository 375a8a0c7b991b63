"""socialsuggest: per-org suggestion models and the platform that runs their life."""
