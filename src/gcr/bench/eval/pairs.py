"""The normalized preference pair every benchmark layout is read into.

Images stay encoded (bytes or a file path) until a pair is actually judged:
a benchmark of thousands of pairs is never decoded into memory at once, and a
broken image fails only its own pair (reported as a failure) instead of the
whole evaluation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from gcr.errors import DatasetError, ImageError
from gcr.image_input import ImageInput
from gcr.images import ensure_rgb
from gcr.task import Task

#: A human preference between candidate A and candidate B. ``unknown`` marks a
#: label that could not be read; such pairs are skipped and counted, never guessed.
Label = Literal["A", "B", "tie", "unknown"]
LABELS: tuple[str, ...] = ("A", "B", "tie", "unknown")

_BASE64_RE = re.compile(r"^[A-Za-z0-9+/=\s]+$")


def _decode_base64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        raise ImageError(f"{where}: the image text is neither a file path nor valid base64") from None


@dataclass(frozen=True, eq=False)
class ImageRef:
    """One image of a dataset row, as stored: raw bytes, a path, or an already decoded image.

    ``value`` is the field's raw content; ``base_dirs`` are the folders a
    relative path is resolved against (the file's folder, then the dataset
    root); ``where`` names the row and field for error messages.
    """

    value: Any
    where: str
    base_dirs: tuple[Path, ...] = ()

    def _resolve_path(self, text: str) -> Path | None:
        p = Path(text).expanduser()
        if p.is_absolute():
            return p if p.is_file() else None
        for base in self.base_dirs:
            candidate = base / p
            if candidate.is_file():
                return candidate
        return None

    def _encoded(self) -> bytes | Path | Image.Image:
        """The image as bytes, a resolved file path, or a PIL image; raise ImageError if unusable."""
        value = self.value
        if isinstance(value, list | tuple):
            if len(value) != 1:
                raise DatasetError(f"{self.where}: expected exactly one image, found {len(value)}")
            value = value[0]
        if isinstance(value, Image.Image):
            return value
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path")
            if data:
                return _decode_base64(data, self.where) if isinstance(data, str) else bytes(data)
            if path:
                resolved = self._resolve_path(str(path))
                if resolved is None:
                    raise ImageError(f"{self.where}: image file {path!r} not found{self._searched()}")
                return resolved
            raise ImageError(f"{self.where}: the image record has neither bytes nor a path")
        if isinstance(value, bytes | bytearray | memoryview):
            if not value:
                raise ImageError(f"{self.where}: the image bytes are empty")
            return bytes(value)
        if isinstance(value, str):
            text = value.strip()
            if not text:
                raise ImageError(f"{self.where}: the image field is empty")
            if text.startswith("data:"):
                _, _, payload = text.partition(",")
                return _decode_base64(payload, self.where)
            resolved = self._resolve_path(text)
            if resolved is not None:
                return resolved
            if len(text) > 64 and _BASE64_RE.match(text):
                return _decode_base64(text, self.where)
            raise ImageError(f"{self.where}: image file {text!r} not found{self._searched()}")
        if value is None:
            raise ImageError(f"{self.where}: the image is missing")
        raise ImageError(f"{self.where}: cannot read an image from a {type(value).__name__}")

    def _searched(self) -> str:
        if not self.base_dirs:
            return ""
        return " (looked in " + ", ".join(str(b) for b in self.base_dirs) + ")"

    def load(self) -> Image.Image:
        """Decode to an RGB image, or raise :class:`ImageError` / :class:`DatasetError`."""
        encoded = self._encoded()
        if isinstance(encoded, Image.Image):
            return ensure_rgb(encoded)
        try:
            source = io.BytesIO(encoded) if isinstance(encoded, bytes) else encoded
            with Image.open(source) as img:
                img.load()
                return ensure_rgb(img)
        except UnidentifiedImageError:
            raise ImageError(f"{self.where}: not an image (or an unsupported format)") from None
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{self.where}: refusing an image this large ({exc})") from None
        except OSError as exc:
            raise ImageError(f"{self.where}: cannot decode the image: {exc}") from None

    def to_input(self) -> ImageInput:
        """The image for the critic without decoding it: its bytes or file as stored (header checked).

        A PIL value keeps its pixels. The critic sends the stored bytes as they are when
        they decode to the same RGB pixels on the server (see :mod:`gcr.image_input`), so
        a benchmark image is neither decoded nor re-encoded on the way.
        """
        encoded = self._encoded()
        if isinstance(encoded, Image.Image):
            return ImageInput.from_pil(ensure_rgb(encoded))
        if isinstance(encoded, Path):
            return ImageInput.from_file(encoded, where=self.where)
        return ImageInput.from_bytes(encoded, where=self.where)

    def digest(self) -> str:
        """A content hash of the stored image (encoded bytes, or decoded pixels for PIL values)."""
        encoded = self._encoded()
        h = hashlib.sha256()
        if isinstance(encoded, Image.Image):
            h.update(f"{encoded.mode}:{encoded.size}".encode())
            h.update(encoded.tobytes())
        elif isinstance(encoded, Path):
            h.update(encoded.read_bytes())
        else:
            h.update(encoded)
        return h.hexdigest()


def image_refs(value: Any, where: str, base_dirs: Sequence[Path]) -> tuple[ImageRef, ...]:
    """Split a field that may hold zero, one or several images into one reference per image."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        bases = tuple(base_dirs)
        kept = [(i, item) for i, item in enumerate(value) if item is not None]
        return tuple(ImageRef(item, f"{where}[{i}]", bases) for i, item in kept)
    if isinstance(value, str) and not value.strip():
        return ()
    return (ImageRef(value, where, tuple(base_dirs)),)


@dataclass(frozen=True, eq=False)
class PreferencePair:
    """One human-labelled comparison, in gcr's terms whatever the benchmark's own layout.

    ``image_a`` and ``image_b`` are the candidates in the order the critic sees
    them; ``label`` says which one people preferred. ``row`` is the position in
    the dataset (0-based) for error messages.
    """

    id: str
    task: Task
    prompt: str
    image_a: ImageRef
    image_b: ImageRef
    label: Label
    sources: tuple[ImageRef, ...] = ()
    category: str | None = None
    raw_label: str | None = None
    row: int = 0
    problems: tuple[str, ...] = field(default_factory=tuple)

    def check(self) -> None:
        """Raise :class:`DatasetError` if the row cannot be judged (empty prompt, missing sources)."""
        if self.problems:
            raise DatasetError(f"row {self.row} (id {self.id}): " + "; ".join(self.problems))
        if not self.prompt.strip():
            raise DatasetError(f"row {self.row} (id {self.id}): the prompt is empty")
        if self.task is Task.EDIT and not self.sources:
            raise DatasetError(f"row {self.row} (id {self.id}): an edit pair needs a source image")
        if self.task is Task.T2I and self.sources:
            raise DatasetError(
                f"row {self.row} (id {self.id}): the row has source images but the layout is text-to-image;"
                " choose an edit layout with --layout"
            )
