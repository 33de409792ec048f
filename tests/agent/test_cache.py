"""Cache keys change with every input that changes the result, and entries round-trip."""

from __future__ import annotations

import pytest
from PIL import Image

from gcr.agent.cache import ArtifactCache, critique_key, default_cache_dir, generation_key
from gcr.critic.schema import Critique, Dimension, DimensionJudgement
from gcr.task import Task

GEN = {
    "model_id": "sd-tiny",
    "params": {"steps": 2, "width": 32, "height": 32},
    "prompt": "a red cat",
    "seed": 3,
    "source_digests": ["abc"],
}
CRIT = {
    "critic_identity": "critic-1",
    "task": "t2i",
    "prompt": "a red cat",
    "image_digest": "img",
    "source_digests": [],
}


def test_generation_key_is_stable_and_order_insensitive_in_params():
    again = {**GEN, "params": {"height": 32, "width": 32, "steps": 2}}
    assert generation_key(**GEN) == generation_key(**again)
    assert len(generation_key(**GEN)) == 64


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model_id", "sd-tiny-lora"),
        ("params", {"steps": 3, "width": 32, "height": 32}),
        ("prompt", "a red cat, golden light"),
        ("seed", 4),
        ("source_digests", ["abd"]),
    ],
)
def test_generation_key_changes_with_each_input(field, value):
    assert generation_key(**{**GEN, field: value}) != generation_key(**GEN)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("critic_identity", "critic-2"),
        ("task", "edit"),
        ("prompt", "a blue cat"),
        ("image_digest", "img2"),
        ("source_digests", ["src"]),
    ],
)
def test_critique_key_changes_with_each_input(field, value):
    assert critique_key(**{**CRIT, field: value}) != critique_key(**CRIT)


def test_generation_and_critique_keys_never_collide():
    assert generation_key(**GEN) != critique_key(**CRIT)


def test_image_round_trip_and_damaged_entry_is_a_miss(tmp_path):
    cache = ArtifactCache(tmp_path)
    key = generation_key(**GEN)
    assert cache.get_image(key) is None
    image = Image.new("RGB", (8, 8), (200, 10, 10))
    cache.put_image(key, image, {"image_digest": "d", "seed": 3})
    path, meta = cache.get_image(key)
    assert meta == {"image_digest": "d", "seed": 3}
    with Image.open(path) as img:
        assert img.getpixel((0, 0)) == (200, 10, 10)
    path.write_bytes(b"not a png")
    assert cache.get_image(key) is None
    assert not path.exists()


def test_critique_round_trip(tmp_path):
    cache = ArtifactCache(tmp_path)
    critique = Critique(
        task=Task.T2I,
        judgements=[DimensionJudgement(dimension=Dimension.TEXT_FAITHFULNESS, score=3.5, justification="ok")],
        refined_request="a red cat, golden light",
        raw_text="raw",
    )
    key = critique_key(**CRIT)
    assert cache.get_critique(key) is None
    cache.put_critique(key, critique)
    assert cache.get_critique(key) == critique
    # No temporary files are left behind by the atomic writes.
    assert not list(tmp_path.rglob("*.tmp"))


def test_default_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GCR_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("GCR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "gcr" / "artifacts"
