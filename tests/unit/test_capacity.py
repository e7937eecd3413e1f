"""How much one worker process takes on (worker/submit.py `Capacity`), on a real event loop."""

from __future__ import annotations

import asyncio

import pytest

from worker.capacity import Capacity


def test_holds_twice_the_posts_in_flight_or_a_whole_batch() -> None:
    """A process holds twice its POSTs in flight, or one whole batch if that is more."""
    assert Capacity(64).size == 128
    assert Capacity(4, batch_max=16).size == 16


def test_a_message_waits_until_there_is_room_for_all_of_it() -> None:
    """A message waits until there is room for all its orders, then takes it in one go."""

    async def scenario() -> list[str]:
        capacity = Capacity(2)  # room for 4 held orders
        seen: list[str] = []
        assert await capacity.take(3) == 3
        waiting = asyncio.create_task(capacity.take(2))
        await asyncio.sleep(0.01)
        seen.append("waiting" if not waiting.done() else "taken")
        capacity.give_back(1)
        assert await asyncio.wait_for(waiting, 1) == 2
        seen.append("taken")
        return seen

    assert asyncio.run(scenario()) == ["waiting", "taken"]


def test_a_message_larger_than_the_whole_capacity_takes_all_of_it() -> None:
    """A message larger than the capacity takes all of it rather than waiting forever."""

    async def scenario() -> int:
        capacity = Capacity(1)
        return await capacity.take(10)

    assert asyncio.run(scenario()) == 2


@pytest.mark.timeout(10)
def test_many_messages_share_it_without_deadlock() -> None:
    """Messages take their share one at a time: none can hold part of it while waiting."""

    async def scenario() -> int:
        capacity = Capacity(4)  # 8 held at most
        held = 0
        most = 0

        async def message(n: int) -> None:
            nonlocal held, most
            units = await capacity.take(n)
            held += units
            most = max(most, held)
            await asyncio.sleep(0.001)
            held -= units
            capacity.give_back(units)

        await asyncio.gather(*(message(1 + i % 7) for i in range(200)))
        return most

    assert asyncio.run(scenario()) <= 8


def test_closing_sends_every_waiting_message_away_empty_handed() -> None:
    """Closing sends every message still waiting for room away with nothing."""

    async def scenario() -> tuple[int, int, int]:
        capacity = Capacity(2)
        assert await capacity.take(4) == 4  # full
        first = asyncio.create_task(capacity.take(2))
        second = asyncio.create_task(capacity.take(1))
        await asyncio.sleep(0.01)
        assert not first.done() and not second.done()
        capacity.close()
        later = await capacity.take(1)
        return await asyncio.wait_for(first, 1), await asyncio.wait_for(second, 1), later

    assert asyncio.run(scenario()) == (0, 0, 0)
