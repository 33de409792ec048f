"""Image helpers shared by the critic, the generators and the agent.

Loading fails with a short :class:`~gcr.errors.ImageError` naming the file;
nothing here silently substitutes a blank image.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from gcr.errors import ImageError


def load_image(path: str | Path) -> Image.Image:
    """Open ``path`` as an RGB image, fully decoded, or raise :class:`ImageError`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ImageError(f"image file not found: {p}")
    if not p.is_file():
        raise ImageError(f"not a file: {p}")
    try:
        with Image.open(p) as img:
            img.load()
            return img.convert("RGB")
    except UnidentifiedImageError:
        raise ImageError(f"not an image (or an unsupported format): {p}") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image {p} is too large to read safely ({exc})") from None
    except OSError as exc:
        raise ImageError(f"cannot read image {p}: {exc}") from None


def ensure_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` in RGB mode (alpha composited on white)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def fit_pixel_budget(image: Image.Image, max_pixels: int | None) -> Image.Image:
    """Downscale (never upscale) so width × height ≤ ``max_pixels``, keeping the aspect ratio."""
    if max_pixels is None or max_pixels <= 0:
        return image
    w, h = image.size
    if w * h <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (w * h))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def resize_longest_edge(image: Image.Image, longest: int, multiple: int) -> Image.Image:
    """Scale so the longest edge is at most ``longest``, sides rounded down to ``multiple``."""
    if longest < multiple:
        raise ValueError(f"longest edge {longest} is smaller than the required multiple {multiple}")
    w, h = image.size
    scale = min(1.0, longest / max(w, h))
    nw = max(multiple, int(w * scale) // multiple * multiple)
    nh = max(multiple, int(h * scale) // multiple * multiple)
    if (nw, nh) == (w, h):
        return image
    return image.resize((nw, nh), Image.Resampling.LANCZOS)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    ensure_rgb(image).save(buf, format="PNG")
    return buf.getvalue()


def to_data_url(image: Image.Image) -> str:
    """Encode as a ``data:image/png;base64,...`` URL, the form OpenAI-compatible servers accept."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def image_digest(image: Image.Image) -> str:
    """Content hash of the decoded pixels (mode, size and bytes), stable across file formats."""
    h = hashlib.sha256()
    h.update(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()
