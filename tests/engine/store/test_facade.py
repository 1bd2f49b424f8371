"""The store facade: one database, the project's secrets."""

from __future__ import annotations

from engine.store import Store


def test_a_project_secret_is_made_once_and_kept(store, database_url):
    first = store.secret("short_links")
    assert len(first) == 64 and first == store.secret("short_links")
    again = Store(database_url)  # another process of the same project
    assert again.secret("short_links") == first
    assert again.secret("another") != first
    again.close()
