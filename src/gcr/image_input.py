"""One image on its way to a critic: pixels, encoded bytes and a file, each made at most once.

Every caller of the critic (the refine graph, ``gcr bench``, ``gcr eval``, PARROT,
RL rewards) hands images to it either as PIL images or as :class:`ImageInput`.
An :class:`ImageInput` holds whatever is already at hand (decoded pixels, the
encoded bytes as they came from a file or a dataset, the complete file on disk)
and derives the rest lazily, once, under a lock, so that:

* an image whose pixels are in memory is never decoded again;
* an image that came as PNG/JPEG/WebP bytes is sent as those bytes, never
  decoded and re-encoded, when the destination accepts them as they are;
* a downscaled copy for a pixel budget is made once per budget;
* pixel digests are taken from the in-memory array (:func:`gcr.images.image_digest`,
  the same digest as before, so cache keys do not move).

What the server decodes from the bytes sent is the same RGB array as
:meth:`ImageInput.pixels`: bytes are passed through only for RGB and greyscale
images without transparency, whose conversion to RGB on the
server (vLLM converts with Pillow's ``convert("RGB")``) equals
:func:`gcr.images.ensure_rgb` here. Anything else (alpha, CMYK, 16-bit,
formats the OpenAI image API does not list) is flattened with
:func:`~gcr.images.ensure_rgb` and sent as a lossless PNG.
"""

from __future__ import annotations

import base64
import contextlib
import io
import threading
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from gcr.errors import ImageError
from gcr.images import ensure_rgb, fit_pixel_budget, image_digest

#: Formats sent as they are, with the MIME type of their data URL. These are the
#: formats OpenAI-compatible chat APIs accept for ``image_url`` parts.
PASS_THROUGH_FORMATS: dict[str, str] = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
#: Modes whose conversion to RGB is the same on the server as in :func:`gcr.images.ensure_rgb`.
_PASS_THROUGH_MODES = frozenset({"RGB", "L"})
#: zlib level of the PNGs gcr encodes itself: lossless like any level, several times
#: faster than Pillow's default (6) on 1024 px images, files about 10% larger.
PNG_COMPRESS_LEVEL = 1


def encode_png(image: Image.Image) -> bytes:
    """Lossless PNG bytes of ``image`` (RGB), at the fast compression level."""
    buf = io.BytesIO()
    ensure_rgb(image).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


class ImageInput:
    """An image known by its pixels, its encoded bytes and/or a complete file holding those bytes.

    Build one with :meth:`from_pil`, :meth:`from_bytes` or :meth:`from_file`;
    ``from_bytes`` and ``from_file`` read only the header (format, size, mode) and
    raise :class:`~gcr.errors.ImageError` when it is not an image. ``where`` names
    the image in error messages.

    The object is immutable from the outside and safe to share between threads:
    each derived form (pixels, encoding, downscaled copy) is computed once.
    """

    __slots__ = (
        "_budgeted",
        "_data",
        "_digest",
        "_encode_lock",
        "_encoded",
        "_header",
        "_lock",
        "_path",
        "_pixels",
        "_resize_lock",
        "where",
    )  # fmt: skip

    def __init__(
        self,
        *,
        pixels: Image.Image | None = None,
        data: bytes | None = None,
        path: str | Path | None = None,
        where: str = "image",
    ) -> None:
        if pixels is None and data is None and path is None:
            raise ValueError("an ImageInput needs pixels, bytes or a file")
        self._pixels = ensure_rgb(pixels) if pixels is not None else None
        self._data = data
        self._path = Path(path) if path is not None else None
        self._header: tuple[str | None, str, tuple[int, int], bool] | None = None
        self._encoded: tuple[bytes, str] | None = None
        self._budgeted: dict[int, ImageInput] = {}
        self._digest: str | None = None
        # One lock per derived form, so a caller that needs the downscaled copy never waits
        # for another thread that is encoding the full image (e.g. the run-folder writer).
        self._lock = threading.RLock()
        self._encode_lock = threading.Lock()
        self._resize_lock = threading.Lock()
        self.where = where
        if pixels is not None and self._pixels is pixels and getattr(pixels, _ATTR, None) is None:
            # The same PIL image handed to the critic later finds this object and its encodings.
            with contextlib.suppress(AttributeError):
                setattr(pixels, _ATTR, self)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_pil(
        cls, image: Image.Image, *, data: bytes | None = None, path: str | Path | None = None
    ) -> ImageInput:
        """Pixels in memory; ``data``/``path``: their encoding already written (e.g. the run folder PNG)."""
        return cls(pixels=image, data=data, path=path)

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "image") -> ImageInput:
        """Encoded bytes (e.g. a dataset cell); the header is checked now, pixels are decoded on demand."""
        if not data:
            raise ImageError(f"{where}: the image bytes are empty")
        inp = cls(data=bytes(data), where=where)
        inp.header()
        return inp

    @classmethod
    def from_file(cls, path: str | Path, where: str | None = None) -> ImageInput:
        """A complete image file; the header is checked now, the bytes are read only if they are sent."""
        p = Path(path).expanduser()
        if not p.is_file():
            raise ImageError(f"image file not found: {p}")
        inp = cls(path=p.resolve(), where=where or str(p))
        inp.header()
        return inp

    # -- what is known ----------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The complete file holding this image's encoded bytes, if there is one."""
        return self._path

    @property
    def has_pixels(self) -> bool:
        return self._pixels is not None

    def header(self) -> tuple[str | None, str, tuple[int, int], bool]:
        """(format, mode, size, has transparency) without decoding the pixels."""
        with self._lock:
            if self._header is None:
                if self._pixels is not None and self._data is None and self._path is None:
                    self._header = (None, self._pixels.mode, self._pixels.size, False)
                else:
                    self._header = self._read_header()
            return self._header

    def _read_header(self) -> tuple[str | None, str, tuple[int, int], bool]:
        try:
            with Image.open(self._source()) as img:
                transparent = "transparency" in img.info or img.mode in ("RGBA", "LA", "PA", "RGBa", "La")
                return img.format, img.mode, img.size, transparent
        except UnidentifiedImageError:
            raise ImageError(f"{self.where}: not an image (or an unsupported format)") from None
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{self.where}: refusing an image this large ({exc})") from None
        except OSError as exc:
            raise ImageError(f"{self.where}: cannot read the image: {exc}") from None

    def _source(self) -> io.BytesIO | Path:
        if self._data is not None:
            return io.BytesIO(self._data)
        assert self._path is not None
        return self._path

    @property
    def size(self) -> tuple[int, int]:
        return self.header()[2]

    # -- derived forms -----------------------------------------------------------------
    def pixels(self) -> Image.Image:
        """The RGB pixels: the in-memory array when there is one, else decoded once."""
        with self._lock:
            if self._pixels is None:
                try:
                    with Image.open(self._source()) as img:
                        img.load()
                        self._pixels = ensure_rgb(img)
                except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
                    raise ImageError(f"{self.where}: cannot decode the image: {exc}") from None
            return self._pixels

    def digest(self) -> str:
        """:func:`gcr.images.image_digest` of the RGB pixels (computed once)."""
        with self._lock:
            if self._digest is None:
                self._digest = image_digest(self.pixels())
            return self._digest

    def passes_through(self) -> bool:
        """Whether the existing bytes decode, on any Pillow-based server, to exactly :meth:`pixels`."""
        if self._data is None and self._path is None:
            return False
        fmt, mode, _size, transparent = self.header()
        return fmt in PASS_THROUGH_FORMATS and mode in _PASS_THROUGH_MODES and not transparent

    def encoded(self) -> tuple[bytes, str]:
        """(bytes, MIME type) to send: the existing bytes when they pass through, else a PNG made once."""
        with self._encode_lock:
            if self._encoded is None:
                if self.passes_through():
                    fmt = self.header()[0]
                    assert fmt is not None
                    data = self._data if self._data is not None else self._read_file()
                    self._encoded = (data, PASS_THROUGH_FORMATS[fmt])
                else:
                    self._encoded = (encode_png(self.pixels()), "image/png")
            return self._encoded

    def record_file(self, path: str | Path) -> None:
        """Note that the complete file ``path`` now holds :meth:`encoded`'s bytes (e.g. written behind).

        Until this is called the image has no file, so it is never sent by path early.
        """
        with self._encode_lock, self._lock:
            if self._encoded is None:
                raise ValueError("record_file() needs the bytes that were written: call encoded() first")
            self._data = self._encoded[0]
            self._path = Path(path).resolve()
            self._header = None  # read again from the bytes: now they can pass through

    def _read_file(self) -> bytes:
        assert self._path is not None
        try:
            return self._path.read_bytes()
        except OSError as exc:
            raise ImageError(f"{self.where}: cannot read {self._path}: {exc}") from None

    def data_url(self) -> str:
        """``data:<mime>;base64,...`` of :meth:`encoded`."""
        data, mime = self.encoded()
        return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")

    def file_url(self, allowed_root: str | Path) -> str | None:
        """A ``file://`` URL of the complete file if it lies under ``allowed_root`` and passes through."""
        if self._path is None or not self.passes_through():
            return None
        path = self._path.resolve()
        root = Path(allowed_root).expanduser().resolve()
        if root not in path.parents:
            return None
        return path.as_uri()

    def within_budget(self, max_pixels: int | None) -> ImageInput:
        """This image if it has at most ``max_pixels`` pixels, else its downscaled copy (made once)."""
        if max_pixels is None or max_pixels <= 0:
            return self
        w, h = self.size
        if w * h <= max_pixels:
            return self
        with self._resize_lock:
            small = self._budgeted.get(max_pixels)
            if small is None:
                small = ImageInput(pixels=fit_pixel_budget(self.pixels(), max_pixels), where=self.where)
                self._budgeted[max_pixels] = small
            return small

    def __repr__(self) -> str:
        have = [n for n, v in (("pixels", self._pixels), ("bytes", self._data), ("file", self._path)) if v]
        return f"ImageInput({self.where!r}, {'+'.join(have)})"


#: Attribute under which a PIL image keeps its :class:`ImageInput`, so the same in-memory
#: image handed to the critic again (a re-ask, both orders of a pair, one candidate in
#: many pairs) reuses its encodings. It lives and dies with the image (``copy()`` does
#: not carry it), which a global table keyed by image could not do without keeping
#: every image alive.
_ATTR = "_gcr_image_input"


def as_image_input(image: Any) -> ImageInput:
    """``image`` as an :class:`ImageInput` (PIL images are wrapped once; their pixels are not copied).

    A PIL image must not be changed in place after it was handed to the critic.
    """
    if isinstance(image, ImageInput):
        return image
    if isinstance(image, Image.Image):
        found = getattr(image, _ATTR, None)
        if isinstance(found, ImageInput) and (found._pixels is image or image.mode != "RGB"):
            return found
        found = ImageInput(pixels=image)
        # An Image subclass with __slots__ cannot carry it: no reuse, still correct.
        with contextlib.suppress(AttributeError):
            setattr(image, _ATTR, found)
        return found
    raise TypeError(f"expected a PIL image or an ImageInput, got {type(image).__name__}")


def as_pil(image: Image.Image | ImageInput) -> Image.Image:
    """The RGB pixels of ``image`` (no copy when they are in memory)."""
    if isinstance(image, ImageInput):
        return image.pixels()
    return ensure_rgb(image)
