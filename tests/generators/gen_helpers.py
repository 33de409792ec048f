"""Helpers shared by the generator tests (imported as ``gen_helpers``)."""

from __future__ import annotations

import numpy as np
from PIL import Image

EDIT_KINDS = ("flux-kontext", "instruct-pix2pix")
T2I_KINDS = ("sd", "flux")
ALL_KINDS = T2I_KINDS + EDIT_KINDS


def source_image(color: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A source image with a colour gradient, so resizing and content both matter."""
    w, h = size
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    base = np.array(color, dtype=float)[None, None, :]
    pixels = np.clip(base * (0.5 + 0.5 * x) + 60 * y, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def max_diff(a: Image.Image, b: Image.Image) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())
