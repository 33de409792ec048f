"""Helpers shared by the generator tests (imported as ``gen_helpers``)."""

from __future__ import annotations

import numpy as np
from PIL import Image

EDIT_KINDS = ("flux-kontext", "instruct-pix2pix")
T2I_KINDS = ("sd", "flux")
ALL_KINDS = T2I_KINDS + EDIT_KINDS


def source_image(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A random-pixel source image: different seeds differ in structure, not just in colour.

    (Constant or same-shaped images in another colour look almost alike to a random
    VAE encoder, whose group norms remove such offsets and scales.)
    """
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def max_diff(a: Image.Image, b: Image.Image) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())
