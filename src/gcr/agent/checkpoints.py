"""The run folder's checkpoint store, read as untrusted data.

Run folders travel: benchmark outputs are shared, bug reports attach them. So
``checkpoints.sqlite`` is read the way any user file is: as data that may have
been crafted. LangGraph's default serializer revives any class or function a
checkpoint names (a msgpack extension holding ``("os", "system", ...)`` runs a
shell command on load). :class:`RunCheckpointSerializer` turns that off:

* msgpack extensions are revived only for LangGraph's built-in safe types
  (``langgraph.checkpoint.serde._msgpack.SAFE_MSGPACK_TYPES``: ``Send``,
  ``Interrupt``, ``Overwrite``, dates, ...). gcr's own state is plain JSON-like
  data (:mod:`gcr.agent.state`) and needs nothing more;
* a value that names anything else is refused as a whole (a :class:`RunError`),
  rather than silently read as its raw arguments, so a tampered folder is
  reported, not half-resumed;
* the ``pickle`` and ``json`` encodings, which gcr never writes, are refused.

Damaged data (a blob that does not decode, a file that is not SQLite) also
becomes a :class:`RunError` saying the folder cannot be resumed and why.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.serde.event_hooks import SerdeEvent, register_serde_event_listener
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from gcr.errors import RunError

#: Encodings gcr's checkpoints use (LangGraph writes ``null`` for None, ``msgpack`` for the rest).
ACCEPTED_ENCODINGS = frozenset({"msgpack", "null", "bytes", "bytearray"})

# What LangGraph refused while one value was being read (None outside of a read).
_refused: ContextVar[list[str] | None] = ContextVar("gcr_checkpoint_refused", default=None)


def _note_refusal(event: SerdeEvent) -> None:
    found = _refused.get()
    if found is not None and event["kind"] in ("msgpack_blocked", "msgpack_method_blocked"):
        name = f"{event['module']}.{event['name']}"
        found.append(f"{name}.{event['method']}" if "method" in event else name)


# LangGraph reports each blocked type through its serde event hooks (synchronously, on the
# reading thread); the context variable ties a report to the read that caused it.
register_serde_event_listener(_note_refusal)


class RunCheckpointSerializer(JsonPlusSerializer):
    """LangGraph's serializer in strict mode that refuses, loudly, what it will not revive.

    ``where`` names the store in error messages (the checkpoint file).
    """

    def __init__(self, where: str = "the checkpoint store") -> None:
        # None: no types beyond LangGraph's built-in safe set (strict msgpack mode).
        super().__init__(allowed_msgpack_modules=None)
        self.where = where

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        encoding = data[0]
        if encoding not in ACCEPTED_ENCODINGS:
            raise RunError(
                f"{self.where} cannot be resumed: it holds a value in the {encoding!r} encoding, which gcr "
                "never writes and does not read (it could run code); start a new run"
            )
        token = _refused.set([])
        try:
            value = super().loads_typed(data)
            refused = list(_refused.get() or [])
        except Exception as exc:  # a blob that does not decode: msgpack errors, bad UTF-8, ...
            raise RunError(
                f"{self.where} cannot be resumed: a checkpoint is damaged ({type(exc).__name__}: {exc}); "
                "start a new run"
            ) from None
        finally:
            _refused.reset(token)
        if refused:
            raise RunError(
                f"{self.where} cannot be resumed: a checkpoint names code to load "
                f"({', '.join(sorted(set(refused)))}), which gcr never writes; the folder may have been "
                "tampered with, so nothing from it was run. Start a new run"
            )
        return value


@asynccontextmanager
async def open_checkpointer(
    path: str | Path, saver_class: type[AsyncSqliteSaver] = AsyncSqliteSaver
) -> AsyncIterator[AsyncSqliteSaver]:
    """A ``saver_class`` (an :class:`AsyncSqliteSaver`) on ``path`` that reads through
    :class:`RunCheckpointSerializer`."""
    where = str(path)
    conn = await aiosqlite.connect(where)
    saver = saver_class(conn, serde=RunCheckpointSerializer(where))
    try:
        yield saver
    finally:
        # When a run fails, LangGraph may still be writing the failed step's results in a
        # background task. Closing the connection under that write leaves its statement
        # unfinalized, and SQLite then keeps the connection (its lock and WAL) alive until the
        # garbage collector frees the cursor: a retry in the same process finds the database
        # locked. Every saver operation holds ``saver.lock``; closing under it waits for the
        # write in flight, and a later one fails at once, before it opens a cursor.
        async with saver.lock:
            await conn.close()


def damaged_store(path: str | Path, exc: sqlite3.Error) -> RunError:
    """The error for a checkpoint file SQLite cannot read (not a database, malformed, ...)."""
    return RunError(
        f"{path} cannot be resumed: the checkpoint file is damaged ({exc}); delete the run folder "
        "(or move it aside) and start the run again"
    )
