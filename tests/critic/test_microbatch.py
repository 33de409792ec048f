"""The asyncio micro-batcher: batch sizes, grouping, per-caller results and errors, closing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from gcr.critic.backends.microbatch import MicroBatcher


class Recorder:
    """A blocking batch function that records each batch and doubles the numbers."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.delay = delay

    def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        return [ValueError(f"bad {i}") if i < 0 else 2 * i for i in items]


def test_concurrent_calls_share_batches_up_to_the_limit() -> None:
    rec = Recorder()
    batcher = MicroBatcher(rec, max_batch_size=4, max_wait_s=0.05)

    async def main() -> list[int]:
        return await asyncio.gather(*(batcher.submit(i) for i in range(10)))

    assert asyncio.run(main()) == [2 * i for i in range(10)]
    assert [len(b) for b in rec.batches] == [4, 4, 2]
    assert sorted(i for b in rec.batches for i in b) == list(range(10))
    assert threading.get_ident() not in rec.threads  # ran in a worker thread


def test_items_with_different_keys_never_share_a_batch() -> None:
    rec = Recorder()
    batcher = MicroBatcher(rec, max_batch_size=8, max_wait_s=0.05, key=lambda i: i % 2)

    async def main() -> list[int]:
        return await asyncio.gather(*(batcher.submit(i) for i in range(6)))

    assert asyncio.run(main()) == [0, 2, 4, 6, 8, 10]
    assert sorted(map(sorted, rec.batches)) == [[0, 2, 4], [1, 3, 5]]


def test_an_item_error_reaches_only_its_caller() -> None:
    batcher = MicroBatcher(Recorder(), max_batch_size=8, max_wait_s=0.05)

    async def main() -> list[object]:
        return await asyncio.gather(*(batcher.submit(i) for i in (1, -1, 3)), return_exceptions=True)

    first, bad, third = asyncio.run(main())
    assert (first, third) == (2, 6)
    assert isinstance(bad, ValueError) and str(bad) == "bad -1"


def test_a_failing_batch_fails_every_caller_with_the_made_error() -> None:
    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("device lost")

    batcher = MicroBatcher(
        broken, max_batch_size=8, max_wait_s=0.05, make_error=lambda msg, cause: LookupError(msg)
    )

    async def main() -> list[object]:
        return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    errors = asyncio.run(main())
    assert all(isinstance(e, LookupError) for e in errors)
    assert all("a batch of 3 failed: RuntimeError: device lost" in str(e) for e in errors)


def test_event_loop_keeps_running_while_a_batch_works() -> None:
    batcher = MicroBatcher(Recorder(delay=0.3), max_batch_size=4, max_wait_s=0.0)

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            for _ in range(20):
                await asyncio.sleep(0.01)
                ticks += 1

        await asyncio.gather(batcher.submit(1), ticker())
        return ticks

    assert asyncio.run(main()) == 20


def test_works_across_event_loops_and_refuses_after_close() -> None:
    batcher = MicroBatcher(Recorder(), max_batch_size=2, max_wait_s=0.0)
    assert asyncio.run(batcher.submit(1)) == 2
    assert asyncio.run(batcher.submit(2)) == 4  # a second asyncio.run gets a fresh worker

    async def close_then_submit() -> int:
        await batcher.aclose()
        return await batcher.submit(3)

    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(close_then_submit())


def test_close_fails_waiting_callers() -> None:
    batcher = MicroBatcher(Recorder(delay=0.2), max_batch_size=1, max_wait_s=0.0)

    async def main() -> list[object]:
        tasks = [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
        await asyncio.sleep(0.05)  # the first batch is running, two wait in the queue
        await batcher.aclose()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "closed" in str(r) for r in results)


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        MicroBatcher(Recorder(), max_batch_size=0, max_wait_s=0.0)
    with pytest.raises(ValueError, match="max_wait_s"):
        MicroBatcher(Recorder(), max_batch_size=1, max_wait_s=-1.0)
