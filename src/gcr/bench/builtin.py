"""The small prompt sets that ship with gcr, for quick benchmark runs (``builtin:NAME``).

Each set is written for gcr and probes one weakness of image generators that a
reasoning critic can name and a refined prompt can fix:

============ ==== =================================================================
name         task what it probes
============ ==== =================================================================
counting     t2i  exact object counts
spatial      t2i  spatial relations (left of, under, between, ...)
attributes   t2i  binding colours, materials and sizes to the right objects
text         t2i  rendering a given phrase legibly
edits        edit colour changes, additions, removals, text and layout edits
all-t2i      t2i  counting + spatial + attributes + text (40 prompts)
============ ==== =================================================================

The edit set's source images are simple flat-colour scenes drawn with PIL by
:func:`render_edit_sources` (512 x 512 PNG files in ``data/edits``), so they are
free of licences and small enough to ship.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw

from gcr.errors import DatasetError
from gcr.task import Task


@dataclass(frozen=True)
class BuiltinSet:
    name: str
    task: Task
    description: str
    parts: tuple[str, ...]


BUILTIN_SETS: dict[str, BuiltinSet] = {
    s.name: s
    for s in (
        BuiltinSet("counting", Task.T2I, "exact object counts", ("counting.jsonl",)),
        BuiltinSet("spatial", Task.T2I, "spatial relations between objects", ("spatial.jsonl",)),
        BuiltinSet(
            "attributes", Task.T2I, "colours, materials and sizes bound to objects", ("attributes.jsonl",)
        ),
        BuiltinSet("text", Task.T2I, "legible rendering of a given phrase", ("text.jsonl",)),
        BuiltinSet("edits", Task.EDIT, "colour, add, remove, text and layout edits", ("edits",)),
        BuiltinSet(
            "all-t2i",
            Task.T2I,
            "counting, spatial, attributes and text together",
            ("counting.jsonl", "spatial.jsonl", "attributes.jsonl", "text.jsonl"),
        ),
    )
}


def data_dir() -> Path:
    """The folder of the shipped prompt sets."""
    return Path(str(resources.files("gcr.bench") / "data"))


def builtin_parts(name: str) -> list[Path]:
    """The files (or edit folders) a built-in set is made of; an unknown name lists the known ones."""
    entry = BUILTIN_SETS.get(name.strip().lower())
    if entry is None:
        known = ", ".join(BUILTIN_SETS)
        raise DatasetError(f"no built-in prompt set {name!r}: use one of {known}")
    return [data_dir() / part for part in entry.parts]


# --------------------------------------------------------------------------- edit sources

SOURCE_SIZE = 512
_SKY = (135, 190, 235)
_GRASS = (95, 170, 80)


def _ball(draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle((0, 330, 512, 512), fill=(180, 140, 95))  # table top
    draw.ellipse((196, 190, 336, 330), fill=(215, 40, 40))
    draw.ellipse((226, 215, 256, 245), fill=(240, 140, 140))  # highlight


def _house(draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle((0, 360, 512, 512), fill=_GRASS)
    draw.rectangle((120, 220, 330, 380), fill=(230, 215, 180))
    draw.polygon([(105, 225), (225, 120), (345, 225)], fill=(150, 60, 50))
    draw.rectangle((200, 290, 250, 380), fill=(110, 70, 40))  # door
    draw.rectangle((140, 250, 185, 290), fill=(200, 230, 250))
    draw.rectangle((270, 250, 315, 290), fill=(200, 230, 250))
    draw.rectangle((400, 270, 420, 380), fill=(100, 70, 40))  # tree trunk
    draw.ellipse((360, 180, 460, 290), fill=(40, 120, 50))


def _sign(draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle((0, 400, 512, 512), fill=(120, 120, 120))  # pavement
    draw.rectangle((150, 260, 166, 420), fill=(80, 80, 80))  # post
    draw.rectangle((70, 150, 250, 270), fill=(245, 245, 240), outline=(40, 40, 40), width=4)


def _boxes(draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle((0, 420, 512, 512), fill=(150, 130, 110))
    for level in range(3):
        top = 420 - (level + 1) * 80
        draw.rectangle((196, top, 316, top + 80), fill=(200, 160, 100), outline=(120, 90, 50), width=3)


_SCENES: dict[str, Callable[[ImageDraw.ImageDraw], None]] = {
    "ball.png": _ball,
    "house.png": _house,
    "sign.png": _sign,
    "boxes.png": _boxes,
}


def render_edit_source(name: str) -> Image.Image:
    """Draw one of the edit set's source images (``ball.png``, ``house.png``, ``sign.png``, ``boxes.png``)."""
    if name not in _SCENES:
        raise DatasetError(f"no built-in source image {name!r}: use one of {', '.join(_SCENES)}")
    image = Image.new("RGB", (SOURCE_SIZE, SOURCE_SIZE), _SKY)
    _SCENES[name](ImageDraw.Draw(image))
    return image


def render_edit_sources(folder: str | Path) -> list[Path]:
    """Write every edit source image into ``folder`` (how the shipped files were made)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in _SCENES:
        path = out / name
        render_edit_source(name).save(path, format="PNG", optimize=True)
        written.append(path)
    return written
