"""Scenario records and versions in the store."""

from __future__ import annotations

import pytest

from tests.conftest import NOW


def test_scenario_versions_and_repeated_launch(store):
    kwargs = dict(
        scenario_id="s", name="S", source="s.yaml", now=NOW, event_cursor=7, next_fire_at=None
    )
    assert store.scenarios.save(version="v1", definition={"a": 1}, **kwargs) is True
    store.scenarios.update("s", event_cursor=12)
    assert store.scenarios.save(version="v1", definition={"a": 1}, **kwargs) is False
    assert store.scenarios.record("s").event_cursor == 12  # a relaunch keeps the cursor
    assert store.scenarios.save(version="v2", definition={"a": 2}, **kwargs) is True
    assert store.scenarios.definition("s", "v1") == {"a": 1}
    assert store.scenarios.record("s").version == "v2"
    with pytest.raises(ValueError, match="cannot update"):
        store.scenarios.update("s", name="x")
    assert store.scenarios.record("s").launched_at == NOW
