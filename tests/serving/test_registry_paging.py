"""Serving and GDPR flagging see every org, not the first page of MLflow's search.

MLflow pages registered models by 100: ``Registry.models`` read one page, so an org
past the 100th was never served and never flagged after a deletion request.
"""

from __future__ import annotations

import pytest

from socialsuggest.registry import Registry

pytestmark = [pytest.mark.slow]


def test_more_than_one_page_of_registered_models_is_listed(serving_registry: Registry) -> None:
    client = serving_registry.client
    names = [f"pagetest.org{i:04d}" for i in range(120)]
    for name in names:
        client.create_registered_model(name)
    client.set_registered_model_tag(names[-1], "probe", "last")
    try:
        assert serving_registry.models("pagetest") == names
        aliases = serving_registry.aliases("pagetest")
        assert set(aliases) == set(names) and all(a == {} for a in aliases.values())
        paged = serving_registry.registered("pagetest", page_size=50)  # three pages
        assert sorted(m.name for m in paged) == names
        assert [m.tags.get("probe") for m in paged].count("last") == 1
    finally:
        for name in names:
            client.delete_registered_model(name)
