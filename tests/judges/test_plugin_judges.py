"""The image-reward and hpsv3 adapters, through their real loading code, against stand-in modules.

The real packages cannot be imported next to transformers 5 (see gcr.judges.plugins), so
these tests put small modules with the packages' documented API on sys.path: the adapter
imports them, loads through them and scores through them exactly as it would the real ones.
"""

from __future__ import annotations

import asyncio
import math
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from gcr.errors import InputError, JudgeUnavailableError
from gcr.judges import load_judge

IMAGE_REWARD = '''
from PIL import Image

loaded = []

class _Model:
    def __init__(self, name, device):
        self.name, self.device = name, device

    def score(self, prompt, image):
        assert isinstance(image, Image.Image)
        # A standardized reward: brighter images and longer prompts score higher.
        return sum(image.getpixel((0, 0))) / 255 - 1.5 + len(prompt) / 100

def load(name="ImageReward-v1.0", device="cpu", download_root=None, med_config=None):
    if name == "missing":
        raise RuntimeError(f"Model {name} not found")
    loaded.append((name, device, download_root))
    return _Model(name, device)
'''

HPSV3 = '''
from PIL import Image

class HPSv3RewardInferencer:
    made = []

    def __init__(self, config_path=None, checkpoint_path=None, device="cuda", differentiable=False):
        HPSv3RewardInferencer.made.append((config_path, checkpoint_path, device))

    def reward(self, image_paths, prompts):
        rows = []
        for path, prompt in zip(image_paths, prompts):
            with Image.open(path) as img:
                red = img.convert("RGB").getpixel((0, 0))[0]
            rows.append([red / 10.0, 0.5])
        return rows
'''


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "ImageReward").mkdir()
    (tmp_path / "ImageReward" / "__init__.py").write_text(textwrap.dedent(IMAGE_REWARD))
    (tmp_path / "hpsv3").mkdir()
    (tmp_path / "hpsv3" / "__init__.py").write_text(textwrap.dedent(HPSV3))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("ImageReward", "hpsv3"):
        sys.modules.pop(name, None)
    yield tmp_path
    for name in ("ImageReward", "hpsv3"):
        sys.modules.pop(name, None)


def judge(j, prompt="a bright field", image=None, sources=()):
    return asyncio.run(j.judge(prompt, image or Image.new("RGB", (8, 8), (255, 255, 255)), sources))


def test_image_reward_adapter(fake_packages: Path) -> None:
    j = load_judge("image-reward:,device=cpu,download_root=/models")
    import ImageReward

    assert ImageReward.loaded == [("ImageReward-v1.0", "cpu", "/models")]
    result = judge(j, "a bright field")
    z = 3 - 1.5 + len("a bright field") / 100
    assert result.subscores == {"image_reward": pytest.approx(z)}
    assert result.score == pytest.approx(1 / (1 + math.exp(-z)))
    assert j.identity == "image-reward:ImageReward-v1.0"
    with pytest.raises(InputError, match="text-to-image"):
        judge(j, sources=[Image.new("RGB", (8, 8))])
    with pytest.raises(JudgeUnavailableError, match="cannot load the model"):
        load_judge("image-reward:missing")


def test_hpsv3_adapter_passes_an_image_path_and_keeps_mu(fake_packages: Path) -> None:
    j = load_judge("hpsv3:/ckpt/HPSv3.safetensors,scale=5")
    import hpsv3

    assert hpsv3.HPSv3RewardInferencer.made == [(None, "/ckpt/HPSv3.safetensors", "cpu")]
    result = judge(j, image=Image.new("RGB", (8, 8), (200, 0, 0)))
    assert result.subscores == {"hpsv3": pytest.approx(20.0), "sigma": pytest.approx(0.5)}
    assert result.score == pytest.approx(1 / (1 + math.exp(-20.0 / 5)))
    assert j.identity == "hpsv3:/ckpt/HPSv3.safetensors;scale=5"


def test_missing_packages_say_what_to_do() -> None:
    for name in ("ImageReward", "hpsv3"):
        assert name not in sys.modules
    with pytest.raises(JudgeUnavailableError, match="needs the 'image-reward' package"):
        load_judge("image-reward:")
    with pytest.raises(JudgeUnavailableError, match="needs the 'hpsv3' package"):
        load_judge("hpsv3:")
