"""Paths recorded inside a run or benchmark folder, read back without leaving the folder.

Run folders travel (shared benchmark outputs, bug reports), so the paths their
state, trajectory and result records hold are untrusted: a crafted record naming
``/home/me/photo.png`` or ``../../secret.png``, or an image that is a symlink out
of the folder, would otherwise be read, embedded in an HTML report or sent to a
critic or judge server. gcr only ever records paths inside the folder, relative
to it; anything else is refused.
"""

from __future__ import annotations

from pathlib import Path

from gcr.errors import RunError


def contained_path(root: Path, recorded: str | Path) -> Path:
    """``recorded`` (relative to ``root``, or absolute but inside it) as a path inside ``root``.

    ``root`` must already be resolved. The path is resolved too, so ``..`` parts and
    symlinks that lead out of ``root`` are caught. Raises :class:`RunError` otherwise.
    """
    candidate = Path(recorded)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise RunError(
            f"{root} names {str(recorded)!r}, which lies outside the folder; gcr records only paths "
            "inside it, so the folder was edited or crafted: nothing was read from that path"
        )
    return resolved
