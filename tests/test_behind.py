"""Writes batched behind the answer (storage/behind.py): one write for what was noted
meanwhile, a failed write tried again with nothing lost, and what is left written
at the stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from storage import behind
from storage.behind import WriteBehind


async def test_what_is_noted_during_a_write_goes_in_the_next_one_once() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def write(keys: list[int]) -> None:
        batches.append(keys)
        await gate.wait()

    changes = WriteBehind(write, "things")
    changes.note(1)
    await asyncio.sleep(0)  # the writer takes [1] and waits at the database
    for key in (2, 3, 2, 4, 3):
        changes.note(key)
    assert changes.pending == 3
    gate.set()
    assert await changes.close(1.0)
    assert batches == [[1], [2, 3, 4]]


async def test_a_failed_write_is_tried_again_with_what_came_since(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(behind, "RETRY_AFTER", 0.01)
    batches: list[list[str]] = []

    async def write(keys: list[str]) -> None:
        batches.append(keys)
        if len(batches) == 1:
            raise OSError("disk I/O error")

    changes = WriteBehind(write, "things")
    changes.note("a")
    await asyncio.sleep(0)
    changes.note("b")
    assert await changes.close(1.0)
    assert batches == [["a"], ["a", "b"]]
    assert "could not write 1 things; trying again" in caplog.text


async def test_a_stop_says_what_could_not_be_written(caplog: pytest.LogCaptureFixture) -> None:
    async def write(keys: list[int]) -> None:
        raise OSError("database is locked")

    caplog.set_level(logging.ERROR)
    changes = WriteBehind(write, "marks")
    changes.note(7)
    changes.note(8)
    assert not await changes.close(1.0)
    assert "2 marks could not be written before the stop" in caplog.text


async def test_a_write_that_hangs_at_the_stop_is_given_up_after_the_timeout() -> None:
    async def write(keys: list[int]) -> None:
        await asyncio.sleep(3600)

    changes = WriteBehind(write, "marks")
    changes.note(1)
    await asyncio.sleep(0)
    assert not await asyncio.wait_for(changes.close(0.05), 5)
