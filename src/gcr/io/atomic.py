"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every write goes to a temporary file in the target's own folder (a rename is
atomic only within one file system) and is then moved over the target with
:func:`os.replace`. The temporary file is created with ``O_EXCL`` under a
random name, so two threads or processes writing the same target never share
one, and it gets the permissions a plain ``open`` would (mode 0o666 less the
umask). When the write fails, the temporary file is removed and the target is
left as it was.

``durable=True`` also flushes the data to disk (``fsync``) before the rename
and the folder entry after it, so the new content survives a power cut, not
only a killed process. It costs a disk round trip, so it is used where a file
is the only copy of finished work (settings that bind a results folder, a
compacted results log), not for the many small files of a run folder.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Literal

__all__ = [
    "atomic_file",
    "copy_file_atomic",
    "fsync_folder",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def _temp_path(target: Path) -> Path:
    # Hidden, in the target's folder, unique per call; the name is cut so it stays under 255 bytes.
    return target.with_name(f".{target.name[:150]}.{secrets.token_hex(6)}.tmp")


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are journaled by NTFS
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the data itself was synced
    finally:
        os.close(fd)


@contextmanager
def atomic_file(
    path: str | Path, mode: Literal["wb", "w"] = "wb", *, durable: bool = False
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` when the ``with`` block ends cleanly.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (UTF-8 text). An exception inside the
    block removes the temporary file and leaves ``path`` untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file writes with mode 'wb' or 'w', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with open(fd, mode, encoding=None if mode == "wb" else "utf-8") as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_folder(target.parent)


def write_bytes_atomic(path: str | Path, data: bytes, *, durable: bool = False) -> Path:
    """Replace ``path`` with ``data`` atomically; returns ``path``."""
    with atomic_file(path, "wb", durable=durable) as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str, *, durable: bool = False) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically; returns ``path``."""
    with atomic_file(path, "w", durable=durable) as fh:
        fh.write(text)
    return Path(path)


def write_json_atomic(
    path: str | Path, data: Any, *, indent: int | None = 2, sort_keys: bool = False, durable: bool = False
) -> Path:
    """Replace ``path`` with ``data`` as JSON (UTF-8, non-ASCII kept, then a newline) atomically.

    Values JSON has no type for (paths, dates) are written as their ``str``.
    """
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, ensure_ascii=False, default=str)
    return write_text_atomic(path, text + "\n", durable=durable)


def copy_file_atomic(source: str | Path, target: str | Path, *, durable: bool = False) -> Path:
    """Copy the file ``source`` to ``target`` atomically; returns ``target``."""
    with atomic_file(target, "wb", durable=durable) as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out)
    return Path(target)
