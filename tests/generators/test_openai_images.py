"""The OpenAI-compatible images adapter against a local stub server (no network)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from gen_helpers import source_image
from PIL import Image, ImageOps

from gcr.errors import ConfigError, GeneratorError, InputError
from gcr.generators.base import GenerationRequest
from gcr.generators.openai_images import OpenAIImagesGenerator
from gcr.task import Task
from stubs.images_server import StubImagesServer

KEY_ENV = "GCR_TEST_IMAGES_KEY"


def _gen(stub: StubImagesServer, **options) -> OpenAIImagesGenerator:
    return OpenAIImagesGenerator(
        "gpt-image-test", base_url=stub.base_url, api_key_env=KEY_ENV, max_retries=0, **options
    )


def test_generate_sends_the_request_and_decodes_the_images(images_stub: StubImagesServer) -> None:
    gen = _gen(images_stub)
    result = gen.generate(
        GenerationRequest("a red cat", width=96, height=64, num_images=3, extra={"quality": "low"})
    )
    assert [img.size for img in result.images] == [(96, 64)] * 3
    assert len({img.getpixel((0, 0)) for img in result.images}) == 3
    (sent,) = images_stub.requests
    assert sent.path == "/v1/images/generations"
    assert sent.fields["model"] == "gpt-image-test" and sent.fields["prompt"] == "a red cat"
    assert sent.fields["n"] == 3 and sent.fields["size"] == "96x64" and sent.fields["quality"] == "low"
    assert sent.fields["response_format"] == "b64_json"
    assert sent.headers["authorization"] == "Bearer test-key"
    assert result.params["endpoint"] == "images.generate" and result.params["seed_sent"] is False
    assert result.model_id == f"gpt-image-test@{images_stub.base_url}" and gen.task is Task.T2I


def test_edit_uploads_the_source_image(images_stub: StubImagesServer) -> None:
    gen = _gen(images_stub, task="edit")
    source = source_image(4, (40, 40))
    result = gen.generate(GenerationRequest("make it blue", width=40, height=40, source_images=[source]))
    (sent,) = images_stub.requests
    assert sent.path == "/v1/images/edits" and sent.fields["prompt"] == "make it blue"
    (upload,) = next(iter(sent.files.values()))
    with Image.open(io.BytesIO(upload)) as got:
        assert np.array_equal(np.asarray(got.convert("RGB")), np.asarray(source))
    # The stub answers with the inverted upload: the output really came from our source.
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(ImageOps.invert(source)))
    assert result.params["source_images"][0]["width"] == 40


def test_seed_field_makes_one_call_per_image_with_its_own_seed(images_stub: StubImagesServer) -> None:
    gen = _gen(images_stub, seed_field="seed")
    calls: list[tuple[int, int]] = []
    result = gen.generate(
        GenerationRequest("a cat", seed=40, num_images=2), progress=lambda d, t: calls.append((d, t))
    )
    assert [r.fields["seed"] for r in images_stub.requests] == [40, 41]
    assert [r.fields["n"] for r in images_stub.requests] == [1, 1]
    assert result.seeds == [40, 41] and calls == [(1, 2), (2, 2)]
    again = gen.generate(GenerationRequest("a cat", seed=41))
    assert again.images[0].getpixel((0, 0)) == result.images[1].getpixel((0, 0))


def test_server_errors_become_generator_errors(images_stub: StubImagesServer) -> None:
    images_stub.fail_next(400, "Your request was rejected by the safety system.")
    with pytest.raises(GeneratorError, match=r"refused the request \(HTTP 400\).*safety system"):
        _gen(images_stub).generate(GenerationRequest("a cat"))


def test_an_unreachable_server_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "test-key")
    url = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    gen = OpenAIImagesGenerator("m", base_url=url, api_key_env=KEY_ENV, max_retries=0, timeout=5)
    with pytest.raises(GeneratorError, match=re.escape(f"cannot reach {url}")):
        gen.generate(GenerationRequest("a cat"))


def test_missing_key_and_unsupported_settings_are_refused(
    images_stub: StubImagesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GCR_NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$GCR_NO_SUCH_KEY, which is not set"):
        OpenAIImagesGenerator("m", api_key_env="GCR_NO_SUCH_KEY")
    gen = _gen(images_stub)
    for field, value in (("steps", 20), ("guidance", 3.0), ("negative_prompt", "blurry")):
        with pytest.raises(InputError, match="the images API has no"):
            gen.generate(GenerationRequest("a cat", **{field: value}))
    with pytest.raises(InputError, match="takes no source image"):
        gen.generate(GenerationRequest("a cat", source_images=[source_image(1)]))
    with pytest.raises(InputError, match="needs a source image"):
        _gen(images_stub, task="edit").generate(GenerationRequest("make it blue"))
    assert images_stub.requests == []  # nothing was sent for refused requests


def test_invalid_base64_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "k")
    gen = OpenAIImagesGenerator("m", base_url="http://127.0.0.1:9/v1", api_key_env=KEY_ENV)
    with pytest.raises(GeneratorError, match="not valid base64"):
        gen._decode(type("Item", (), {"b64_json": "@@not-base64@@", "url": None})())
    not_png = base64.b64encode(b"plain text").decode()
    with pytest.raises(GeneratorError, match="not an image"):
        gen._decode(type("Item", (), {"b64_json": not_png, "url": None})())
