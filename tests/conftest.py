"""Shared fixtures: tiny random models built from configs, saved once per session.

The builders live in :mod:`gcr.dev` so that ``gcr dev make-tiny`` and users'
own integration tests can make the same models offline.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def tiny_critic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3-VL critic (model, processor, chat template) saved to disk."""
    from gcr.dev.tiny_critic import build_tiny_critic

    return build_tiny_critic(tmp_path_factory.mktemp("tiny-critic"))


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory: pytest.TempPathFactory):
    """Factory: ``tiny_pipeline_dir("sd")`` builds (once) and returns a saved tiny pipeline."""
    from gcr.dev.tiny_pipelines import build_tiny_pipeline

    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = build_tiny_pipeline(kind, tmp_path_factory.mktemp(f"tiny-{kind}"))
        return built[kind]

    return get


# Scripted OpenAI-compatible critic server (tests/stubs/critic_server.py), reusable by
# any test through the ``critic_stub`` fixture.
import sys  # noqa: E402

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
from stubs.critic_server import critic_stub  # noqa: E402, F401
