"""Images that arrive as tool arguments: a file path on the server, or a ``data:`` URL.

Both are untrusted. A path must lie under one of the allowed roots when the
server restricts them (an HTTP server reachable by others should); a data URL is
capped in size, must be base64 and must decode to an image within Pillow's
decompression-bomb limit. Every failure is an :class:`~gcr.errors.ImageError`
that says which argument is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from gcr.errors import ImageError
from gcr.images import load_image, png_bytes
from gcr.io import write_bytes_atomic

#: Longest data URL accepted (characters): about 36 MB of image file.
MAX_DATA_URL_CHARS = 48 * 1024 * 1024

_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)


def is_data_url(value: str) -> bool:
    return bool(_DATA_URL.match(value[:100]))


def check_path(value: str, roots: Sequence[Path] | None, name: str) -> Path:
    """``value`` as an absolute path, refused when ``roots`` is given and it lies outside them."""
    path = Path(value).expanduser().resolve()
    if roots is not None and not any(path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "(none)"
        raise ImageError(f"{name}: {path} is outside the folders this server reads images from: {allowed}")
    return path


def decode_data_url(value: str, name: str) -> Image.Image:
    """Decode a ``data:image/...;base64,`` URL into an RGB image."""
    if len(value) > MAX_DATA_URL_CHARS:
        raise ImageError(f"{name}: the data URL is longer than {MAX_DATA_URL_CHARS} characters")
    payload = value.split(",", 1)[1]
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"{name}: the data URL is not valid base64") from None
    return _open(io.BytesIO(raw), name)


def _open(source: io.BytesIO, name: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                img.load()
                return img.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: the image has too many pixels") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (or an unsupported format)") from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"{name}: cannot read the image ({exc})") from None


def read_image(value: str, roots: Sequence[Path] | None, name: str) -> Image.Image:
    """The image an argument names (path or data URL), decoded to RGB."""
    if not isinstance(value, str) or not value.strip():
        raise ImageError(f"{name}: give a file path or a data:image/...;base64 URL")
    if is_data_url(value):
        return decode_data_url(value, name)
    path = check_path(value, roots, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return load_image(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: {path} has too many pixels") from None


def image_path(value: str, roots: Sequence[Path] | None, name: str, uploads: Path) -> str:
    """A readable image file for ``value``: its checked path, or a data URL saved under ``uploads``."""
    image = read_image(value, roots, name)
    if not is_data_url(value):
        return str(check_path(value, roots, name))
    data = png_bytes(image)
    target = uploads / f"{hashlib.sha256(data).hexdigest()[:24]}.png"
    if not target.exists():  # named by content: a whole file of that name is already this image
        write_bytes_atomic(target, data)
    return str(target)
