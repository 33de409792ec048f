"""Write run-folder images behind the critical path without giving up crash safety.

Encoding a 1024 px PNG takes about 100 ms of CPU; written inline, it sits
between the generator and the critic in every round. With an
:class:`ImageWriter` active (:func:`write_behind`), ``generate`` hands the image
to a writer thread and goes on at once: ``critique`` takes the pixels (or the
PNG bytes, encoded once and shared with the writer) from memory.

The rule that keeps resumes safe: **a checkpoint never refers to an image file
that is not complete on disk.** Every file is written whole under a temporary
name and renamed into place, and :class:`BarrierSqliteSaver` (the checkpointer
of :func:`gcr.agent.runner.run_refine`) waits for every queued write before it
saves anything. :func:`~gcr.agent.runner.run_refine` saves checkpoints in the
background while the next step runs (``durability="async"``), which takes that
wait off the critical path too (``"sync"`` waits at each step's checkpoint).
Either way, if the process dies first, the checkpoint that would have named the file is
simply not there, and a resume makes the candidate again (from the cache when it
has it).

Without an active writer (a host application compiling the graph with its own
checkpointer) images are written inline, as complete files, before the node
returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from gcr.image_input import ImageInput
from gcr.io import write_bytes_atomic

logger = logging.getLogger(__name__)

_ACTIVE: contextvars.ContextVar[ImageWriter | None] = contextvars.ContextVar("gcr_image_writer", default=None)


def write_file_atomically(data: bytes, target: Path) -> None:
    """Write ``data`` whole under a temporary name, then rename it to ``target``."""
    write_bytes_atomic(target, data)


class ImageWriter:
    """A writer thread for run-folder images; :meth:`flush` waits for everything queued."""

    def __init__(self) -> None:
        # One thread: PNG encoding releases the GIL, and one core for it is plenty
        # beside a generator that produces an image every few seconds.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gcr-image-writer")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def submit(self, image: ImageInput, target: Path, then: Callable[[], None] | None = None) -> Future[None]:
        """Queue ``image`` for ``target``; ``then`` runs once the file is complete.

        The PNG bytes are made once and shared with the critic (``image.encoded()``).
        """

        def job() -> None:
            data, _mime = image.encoded()
            write_file_atomically(data, target)
            image.record_file(target)
            if then is not None:
                then()

        future = self._pool.submit(job)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _snapshot(self) -> list[Future[None]]:
        with self._lock:
            return list(self._pending)

    def flush(self) -> None:
        """Block until every queued write is on disk; re-raise the first failure."""
        for future in self._snapshot():
            future.result()

    async def aflush(self) -> None:
        """:meth:`flush` for a coroutine (the event loop keeps running meanwhile)."""
        for future in self._snapshot():
            await asyncio.wrap_future(future)

    def close(self) -> None:
        """Finish every queued write, then stop the thread."""
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True)


def active_writer() -> ImageWriter | None:
    """The writer of the run this code belongs to (see :func:`write_behind`), if any."""
    return _ACTIVE.get()


@contextlib.contextmanager
def write_behind(writer: ImageWriter) -> Iterator[ImageWriter]:
    """Make ``writer`` active for graph runs started inside the block (nodes inherit the context)."""
    token = _ACTIVE.set(writer)
    try:
        yield writer
    finally:
        _ACTIVE.reset(token)


#: Pending-write channels that say what happened to a task rather than what it produced. These
#: names are part of LangGraph's stored checkpoint format (``langgraph/_internal/_constants.py``:
#: ERROR, ERROR_SOURCE_NODE, INTERRUPT, RESUME; grouped as ``CONTROL_WRITES`` in
#: ``langgraph/pregel/_task_status.py``), so they cannot change without breaking saved runs.
_ERROR = "__error__"
_CONTROL_CHANNELS = frozenset((_ERROR, "__error_source_node__", "__interrupt__", "__resume__"))


def unfinished_task_writes(writes: Any) -> list[tuple[str, Any]]:
    """The writes to save for a task: all of them, or only the control records if it failed.

    LangGraph (1.2) saves a cancelled or failed task's writes *so far* together with its
    error, and a resume takes any non-control write as the task's finished output: the task
    is not run again. A node's state update is recorded before its conditional edge picks
    the next node, so a run cancelled between the two (an MCP client's cancel) resumed with
    the update applied, no next node, and the graph "finished" mid-run. A task that failed
    has no output here: only its error (and interrupt/resume records) are kept, so a resume
    runs it again from its start.
    """
    items = list(writes)
    if not any(channel == _ERROR for channel, _ in items):
        return items
    return [(channel, value) for channel, value in items if channel in _CONTROL_CHANNELS]


class BarrierSqliteSaver(AsyncSqliteSaver):
    """The SQLite checkpointer of a run folder.

    It saves nothing while run-folder images it may name are still queued, and never saves
    partial output of a task that failed or was cancelled (see :func:`unfinished_task_writes`).
    Make it with ``BarrierSqliteSaver.from_conn_string(path)`` and set :attr:`image_writer`.
    (The synchronous ``put``/``put_writes`` of the SQLite saver run these coroutines.)
    """

    image_writer: ImageWriter | None = None

    async def _barrier(self) -> None:
        if self.image_writer is not None:
            await self.image_writer.aflush()

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        await self._barrier()
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        await self._barrier()
        await super().aput_writes(config, unfinished_task_writes(writes), task_id, task_path)
