"""The graph factory behind ``langgraph.json`` (what ``langgraph dev`` serves)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest
from refine_harness import FakeGenerator

from gcr.agent import RefineContext, app
from gcr.generators.registry import register_generator, unregister_generator
from stubs.prompt_aware_critic import (
    PromptAwareCriticServer,
    PromptAwareScript,
    RecordingGenerator,
    SceneBook,
)

ROOT = Path(__file__).resolve().parents[2]


def test_langgraph_json_points_at_the_factory():
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["dependencies"] == ["."]
    path, _, attr = config["graphs"]["gcr_refine"].partition(":")
    spec = importlib.util.spec_from_file_location("gcr_langgraph_entry", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(getattr(module, attr))


def test_spec_from_env():
    spec, task = app.spec_from_env(
        {"GCR_TASK": "edit", "GCR_CRITIC": "http://x/v1", "GCR_REFINER": "llm", "GCR_NO_CACHE": "1"}
    )
    assert task == "edit" and spec.critic == "http://x/v1" and spec.refiner == "llm"
    assert spec.generator is None and spec.generator_kind == "diffusers" and not spec.use_cache


@pytest.fixture
def served(monkeypatch, tmp_path):
    book = SceneBook()
    server = PromptAwareCriticServer(PromptAwareScript(), book).start()
    register_generator("agent-test-fake", lambda model, **kw: RecordingGenerator(FakeGenerator(), book))
    monkeypatch.setenv("GCR_GENERATOR_KIND", "agent-test-fake")
    monkeypatch.setenv("GCR_GENERATOR", "any")
    monkeypatch.setenv("GCR_CRITIC", server.url)
    monkeypatch.setenv("GCR_CRITIC_MODEL", "stub-critic")
    monkeypatch.setenv("GCR_CACHE_DIR", str(tmp_path / "cache"))
    app._components.cache_clear()
    yield
    app._components.cache_clear()
    unregister_generator("agent-test-fake")
    server.stop()


def test_make_graph_serves_a_working_graph_and_loads_models_once(served, tmp_path):
    graph = app.make_graph()
    assert graph.name == "gcr_refine"
    assert app.make_graph({"configurable": {}}) is not graph  # a fresh graph, the same loaded models
    assert app._components.cache_info().misses == 1
    context = RefineContext(run_dir=str(tmp_path / "run"), max_rounds=2, target_reward=None)
    out = asyncio.run(graph.ainvoke({"prompt": "a cat"}, context=context))
    assert out["stop_reason"] == "max_rounds"
    assert out["rounds"][1]["prompt"] == "a cat, golden light"
    schema = graph.get_context_jsonschema()
    assert {"candidates", "max_rounds", "target_reward", "seed_policy"} <= set(schema["properties"])


def test_default_models_are_known_presets_and_released_critics():
    from gcr.agent.components import default_generator
    from gcr.critic.defaults import default_critic_model
    from gcr.generators.presets import alias_repo, detect_family

    assert alias_repo(default_generator("t2i")) == "black-forest-labs/FLUX.1-schnell"
    assert detect_family(alias_repo(default_generator("edit"))).task.value == "edit"
    assert default_critic_model("t2i").endswith("RationalRewards-8B-T2I")
    assert default_critic_model("edit").endswith("RationalRewards-8B-Edit")
