"""Seams the engine tests use to make something happen at a chosen moment of a batch."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.sending import MessageBatch


def before_first_request(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]) -> None:
    """Run `meanwhile` once, when the first message batch to get there has composed its
    messages and is about to store their intent and make its requests."""
    send = MessageBatch.send
    waiting = [meanwhile]

    def send_after(batch: MessageBatch, messages: list) -> None:
        if messages and waiting:
            waiting.pop()()
        send(batch, messages)

    monkeypatch.setattr(MessageBatch, "send", send_after)
