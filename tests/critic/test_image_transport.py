"""What a critic server receives through each image path: the same pixels, whichever way they travel."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import numpy as np
import pytest
from PIL import Image

from gcr.bench.eval.pairs import ImageRef
from gcr.critic import Critic
from gcr.critic.backends.openai_http import OpenAICompatibleBackend
from gcr.critic.serving import ServeConfig, build_vllm_command, client_image_settings
from gcr.errors import ConfigError, ImageError
from gcr.image_input import ImageInput, as_image_input, encode_png
from gcr.images import ensure_rgb, fit_pixel_budget, image_digest, to_data_url
from gcr.training.rl.rewards import CombinedReward, CriticReward, RewardBatch, WeightedReward, brightness
from stubs.critic_server import GOOD_T2I_ANSWER, StubCriticServer

BUDGET = 40 * 30  # pixels; the test images are larger, so client mode must downscale


def photo(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def decode_url(url: str) -> tuple[str, Image.Image, bytes]:
    """(MIME type or 'file', decoded RGB pixels, raw bytes) of an image URL the server got."""
    if url.startswith("file://"):
        raw = Path(url2pathname(urlsplit(url).path)).read_bytes()
        mime = "file"
    else:
        head, _, payload = url.partition(",")
        mime = head.removeprefix("data:").removesuffix(";base64")
        raw = base64.b64decode(payload)
    with Image.open(io.BytesIO(raw)) as img:
        img.load()
        return mime, img.convert("RGB"), raw


def received(stub: StubCriticServer, image: object, **backend_opts: object) -> tuple[str, Image.Image, bytes]:
    stub.reset()
    stub.enqueue(GOOD_T2I_ANSWER)
    backend = OpenAICompatibleBackend(stub.url, model="stub-critic", max_pixels=BUDGET, **backend_opts)
    with Critic(backend) as critic:
        critic.critique("a test", image)  # type: ignore[arg-type]
    (url,) = stub.chat_requests[-1].image_urls()
    return decode_url(url)


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def test_every_path_delivers_the_same_pixels(critic_stub: StubCriticServer, tmp_path: Path) -> None:
    original = photo()
    png = encode_png(original)
    (tmp_path / "c00.png").write_bytes(png)
    old_path = decode_url(to_data_url(fit_pixel_budget(original, BUDGET)))[1]  # what gcr sent before

    # client resize: the downscaled pixels of the old path, from pixels, bytes or a file alike
    for image in (original, ImageInput.from_bytes(png), ImageInput.from_file(tmp_path / "c00.png")):
        mime, pixels, _ = received(critic_stub, image, image_resize="client")
        assert mime == "image/png" and same_pixels(pixels, old_path)

    # server resize: the original pixels; bytes that exist go out unchanged
    mime, pixels, _ = received(critic_stub, original.copy(), image_resize="server")
    assert mime == "image/png" and same_pixels(pixels, original)
    mime, pixels, raw = received(critic_stub, ImageInput.from_bytes(png), image_resize="server")
    assert (mime, raw) == ("image/png", png) and same_pixels(pixels, original)

    # file:// under the allowed folder: the server reads the very file; outside it: bytes
    file_input = ImageInput.from_file(tmp_path / "c00.png")
    mime, pixels, raw = received(critic_stub, file_input, image_resize="server", local_media_root=tmp_path)
    assert (mime, raw) == ("file", png) and same_pixels(pixels, original)
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    mime, _, raw = received(critic_stub, file_input, image_resize="server", local_media_root=elsewhere)
    assert (mime, raw) == ("image/png", png)


def test_jpeg_and_greyscale_pass_through_alpha_does_not(critic_stub: StubCriticServer) -> None:
    buf = io.BytesIO()
    photo().save(buf, format="JPEG", quality=90)
    jpeg = buf.getvalue()
    mime, pixels, raw = received(critic_stub, ImageInput.from_bytes(jpeg), image_resize="server")
    assert (mime, raw) == ("image/jpeg", jpeg)
    assert same_pixels(pixels, Image.open(io.BytesIO(jpeg)).convert("RGB"))

    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((1, 1), (0, 0, 255, 255))
    data = io.BytesIO()
    rgba.save(data, format="PNG")
    mime, pixels, raw = received(critic_stub, ImageInput.from_bytes(data.getvalue()), image_resize="server")
    # Transparency is flattened on white here, as before; the server never sees alpha.
    assert raw != data.getvalue() and same_pixels(pixels, ensure_rgb(rgba))
    assert pixels.getpixel((0, 0)) == (255, 255, 255)


def test_inputs_are_lazy_and_encode_once(tmp_path: Path) -> None:
    original = photo()
    png = encode_png(original)
    inp = ImageInput.from_bytes(png)
    assert not inp.has_pixels and inp.size == (64, 48)
    assert inp.encoded() == (png, "image/png") and not inp.has_pixels  # sent without decoding
    assert inp.within_budget(BUDGET) is inp.within_budget(BUDGET)  # downscaled once
    assert inp.digest() == image_digest(original)  # the pixel digest of the key did not move
    wrapped = as_image_input(original)
    assert as_image_input(original) is wrapped and wrapped.encoded() is wrapped.encoded()
    held = ImageInput.from_pil(photo(seed=1))  # e.g. the refine graph's copy of a new candidate
    assert as_image_input(held.pixels()) is held  # pixels handed on later reuse its encodings
    with pytest.raises(ImageError, match="not an image"):
        ImageInput.from_bytes(b"definitely not an image", where="row 3 image_a")
    with pytest.raises(ImageError, match="not found"):
        ImageInput.from_file(tmp_path / "missing.png")


def test_eval_refs_hand_over_their_stored_bytes(tmp_path: Path) -> None:
    png = encode_png(photo())
    (tmp_path / "a.png").write_bytes(png)
    for ref in (ImageRef({"bytes": png}, "row 0 a"), ImageRef("a.png", "row 0 a", (tmp_path,))):
        inp = ref.to_input()
        assert inp.encoded() == (png, "image/png") and not inp.has_pixels


def test_cache_identity_keeps_its_old_value_for_client_resize(critic_stub: StubCriticServer) -> None:
    client = Critic(OpenAICompatibleBackend(critic_stub.url, model="m", image_resize="client"))
    server = Critic(OpenAICompatibleBackend(critic_stub.url, model="m", image_resize="server"))
    # The payload exactly as it was hashed before the transport settings existed.
    s = client.sampling
    payload = {
        "model": "m",
        "template": client.template_digest("pointwise", "t2i"),
        "sampling": {"temperature": s.temperature, "max_tokens": s.max_tokens, "top_p": s.top_p,
                     "extra": s.extra},
        "max_pixels": client.backend.max_pixels,  # type: ignore[attr-defined]
    }  # fmt: skip
    old = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    assert client.cache_identity("pointwise", "t2i") == old
    assert server.cache_identity("pointwise", "t2i") != old


def test_transport_settings_from_the_environment(
    monkeypatch, critic_stub: StubCriticServer, tmp_path: Path
) -> None:
    monkeypatch.setenv("GCR_CRITIC_IMAGE_RESIZE", "server")
    monkeypatch.setenv("GCR_CRITIC_LOCAL_MEDIA", str(tmp_path))
    backend = OpenAICompatibleBackend(critic_stub.url, model="m")
    assert (backend.image_resize, backend.local_media_root) == ("server", tmp_path.resolve())
    assert OpenAICompatibleBackend(critic_stub.url, model="m", image_resize="client").image_resize == "client"
    monkeypatch.setenv("GCR_CRITIC_IMAGE_RESIZE", "sideways")
    with pytest.raises(ConfigError, match="GCR_CRITIC_IMAGE_RESIZE"):
        OpenAICompatibleBackend(critic_stub.url, model="m")


def test_serve_critic_allows_the_local_media_folder(tmp_path: Path) -> None:
    config = ServeConfig(model="org/critic", local_media_root=tmp_path)
    cmd = build_vllm_command(config, gpus=1)
    assert cmd[cmd.index("--allowed-local-media-path") + 1] == str(tmp_path.resolve())
    assert client_image_settings(config) == {
        "GCR_CRITIC_IMAGE_RESIZE": "server",
        "GCR_CRITIC_LOCAL_MEDIA": str(tmp_path.resolve()),
    }
    assert "--allowed-local-media-path" not in build_vllm_command(ServeConfig(model="org/critic"), gpus=1)
    with pytest.raises(ConfigError, match="not a folder"):
        ServeConfig(model="org/critic", local_media_root=tmp_path / "nope")


def test_rewards_submitted_in_batches_equal_one_call(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(GOOD_T2I_ANSWER, times=8)
    critic = CriticReward(Critic(OpenAICompatibleBackend(critic_stub.url, model="stub-critic")))
    reward = CombinedReward([WeightedReward("critic", 1.0, critic), WeightedReward("b", 0.5, brightness)])
    images = [photo(seed=i) for i in range(4)]
    prompts, sources = ["p"] * 4, [[] for _ in range(4)]
    try:
        whole = reward(images, prompts, sources)
        first = reward.submit(images[:2], prompts[:2], sources[:2])
        second = reward.submit(images[2:], prompts[2:], sources[2:])  # both in flight at once
        parts = RewardBatch.concat([first.result(), second.result()])
    finally:
        reward.close()
    assert parts.total == whole.total and parts.per_reward == whole.per_reward and whole.failed == 0
