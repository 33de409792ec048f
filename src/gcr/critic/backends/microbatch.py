"""An asyncio micro-batcher: concurrent single calls in, one blocking batch call out.

Callers ``await batcher.submit(item)``. A worker task on the caller's event loop
collects items for at most ``max_wait_s`` (or until ``max_batch_size`` are
waiting), splits them into groups of equal ``key``, and runs each group through
the blocking ``run_batch`` function in a worker thread, so the event loop keeps
serving other coroutines while the model works. Each caller gets its own result
back. Items that arrive while a batch runs form the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class MicroBatcher(Generic[T, R]):
    """Collects concurrent :meth:`submit` calls into batches for a blocking function.

    Args:
        run_batch: blocking function called in a worker thread with a list of items;
            returns one entry per item, in order: the result, or an exception instance
            that is raised to that item's caller alone. If it raises, every caller in
            the batch gets the error built by ``make_error``.
        max_batch_size: most items per ``run_batch`` call.
        max_wait_s: how long the first item of a batch waits for company.
        key: items with different keys never share a batch (e.g. different sampling).
        make_error: builds the exception a caller receives when its batch failed as a
            whole or the batcher was closed; gets a message and the cause (or None).
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R | BaseException]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        key: Callable[[T], Hashable] | None = None,
        make_error: Callable[[str, BaseException | None], BaseException] = lambda msg, _cause: RuntimeError(
            msg
        ),
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must not be negative, got {max_wait_s}")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._key = key or (lambda _item: None)
        self._make_error = make_error
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Pending[T, R]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch and wait for its own result."""
        if self._closed:
            raise self._make_error("the batcher is closed", None)
        queue = self._ensure_worker()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        queue.put_nowait(_Pending(item, future))
        return await future

    def _ensure_worker(self) -> asyncio.Queue[_Pending[T, R]]:
        loop = asyncio.get_running_loop()
        # A new event loop (e.g. a second asyncio.run) gets its own queue and worker.
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._work(self._queue), name="gcr-microbatcher")
        assert self._queue is not None
        return self._queue

    async def _collect(self, queue: asyncio.Queue[_Pending[T, R]]) -> list[_Pending[T, R]]:
        batch = [await queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _work(self, queue: asyncio.Queue[_Pending[T, R]]) -> None:
        while True:
            batch = await self._collect(queue)
            groups: dict[Hashable, list[_Pending[T, R]]] = {}
            for pending in batch:
                groups.setdefault(self._key(pending.item), []).append(pending)
            for group in groups.values():
                await self._run_group(group)

    async def _run_group(self, group: list[_Pending[T, R]]) -> None:
        live = [p for p in group if not p.future.done()]  # callers that gave up are skipped
        if not live:
            return
        logger.debug("running a batch of %d", len(live))
        try:
            results = await asyncio.to_thread(self._run_batch, [p.item for p in live])
        except asyncio.CancelledError:
            self._fail(live, "the batcher was closed while this request was running", None)
            raise
        except Exception as exc:
            self._fail(live, f"a batch of {len(live)} failed: {type(exc).__name__}: {exc}", exc)
            return
        if len(results) != len(live):
            self._fail(
                live, f"the batch function returned {len(results)} results for {len(live)} items", None
            )
            return
        for pending, result in zip(live, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, BaseException):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)

    def _fail(self, pending: list[_Pending[T, R]], message: str, cause: BaseException | None) -> None:
        for p in pending:
            if not p.future.done():
                p.future.set_exception(self._make_error(message, cause))

    async def aclose(self) -> None:
        """Stop the worker; callers still waiting get the ``make_error`` error."""
        self._closed = True
        worker, queue = self._worker, self._queue
        self._worker = self._queue = None
        if worker is not None and not worker.done():
            same_loop = worker.get_loop() is asyncio.get_running_loop()
            worker.cancel()
            if same_loop:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
        if queue is not None:
            while not queue.empty():
                self._fail([queue.get_nowait()], "the batcher was closed before this request ran", None)
