"""Image arguments of the MCP tools: paths and data URLs are untrusted input."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from gcr.errors import ImageError
from gcr.serve.inputs import image_path, read_image


def png_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_a_data_url_decodes_and_is_saved_once_by_content(tmp_path):
    url = png_url(Image.new("RGBA", (8, 6), (10, 200, 30, 255)))
    image = read_image(url, None, "image")
    assert image.mode == "RGB" and image.size == (8, 6) and image.getpixel((0, 0)) == (10, 200, 30)
    first = image_path(url, None, "source_images[0]", tmp_path / "uploads")
    second = image_path(url, None, "source_images[0]", tmp_path / "uploads")
    assert first == second and len(list((tmp_path / "uploads").iterdir())) == 1
    assert Image.open(first).size == (8, 6)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("data:image/png;base64,@@@not-base64@@@", "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"just text").decode(), "not an image"),
        ("", "give a file path or a data:image"),
    ],
)
def test_bad_data_urls_name_the_argument(value, message):
    with pytest.raises(ImageError, match=message) as info:
        read_image(value, None, "other_image")
    assert str(info.value).startswith("other_image:")


def test_an_oversized_data_url_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr("gcr.serve.inputs.MAX_DATA_URL_CHARS", 100)
    with pytest.raises(ImageError, match="longer than 100"):
        read_image(png_url(Image.new("RGB", (64, 64))), None, "image")


def test_a_decompression_bomb_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow warns above this and refuses above 2x
    path = tmp_path / "big.png"
    Image.new("RGB", (12, 12)).save(path)
    with pytest.raises(ImageError, match="too many pixels"):
        read_image(str(path), None, "image")
    with pytest.raises(ImageError, match="too many pixels"):
        read_image(png_url(Image.new("RGB", (12, 12))), None, "image")


def test_paths_outside_the_allowed_roots_are_refused(tmp_path):
    inside = tmp_path / "runs" / "a.png"
    inside.parent.mkdir()
    Image.new("RGB", (4, 4)).save(inside)
    roots = [tmp_path / "runs"]
    assert read_image(str(inside), roots, "image").size == (4, 4)
    sneaky = str(tmp_path / "runs" / ".." / "b.png")
    with pytest.raises(ImageError, match="outside the folders"):
        read_image(sneaky, roots, "image")
    with pytest.raises(ImageError, match="not found"):
        read_image(str(tmp_path / "runs" / "missing.png"), roots, "image")
