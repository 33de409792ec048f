"""Mount gcr's refine graph as one node of your own LangGraph app.

The host graph here writes a prompt from a topic, hands it to the refine
subgraph, and captions the best image. The host keeps its own checkpointer;
the refine subgraph checkpoints inside it, streams its progress events, and
(with --interactive) pauses the host for a person's review.

Real models::

    python examples/embed_subgraph.py "a lighthouse at dusk" \\
        --generator black-forest-labs/FLUX.1-schnell --critic http://localhost:8000/v1

Offline smoke run (tiny random diffusers pipeline and a toy colour critic
defined below, no downloads, a few seconds on a CPU)::

    python examples/embed_subgraph.py "a lighthouse at dusk" --offline

The toy critic only shows that any object with ``model_id``, ``cache_identity``
and ``acritique`` can judge images; its scores mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NotRequired, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from PIL import Image, ImageStat

from gcr.agent import CandidateRecord, RefineContext, build_graph
from gcr.critic.schema import Critique, Dimension, DimensionJudgement, Task


class HostState(TypedDict):
    """The host app's state. Keys shared with the refine graph's input/output pass through."""

    topic: str
    prompt: NotRequired[str]
    best: NotRequired[CandidateRecord | None]
    run_dir: NotRequired[str]
    stop_reason: NotRequired[str | None]
    caption: NotRequired[str]


def write_prompt(state: HostState) -> dict:
    return {"prompt": f"{state['topic']}, detailed illustration"}


def caption(state: HostState) -> dict:
    best = state["best"]
    return {
        "caption": f"{best['prompt']} — reward {best['reward']:.2f}, round {best['round']} "
        f"(stopped: {state['stop_reason']})\n{Path(state['run_dir']) / best['image']}"
    }


class ToyColourCritic:
    """Scores colour spread and suggests a style word picked by brightness; a stand-in offline."""

    words = ("vivid colours", "warm light", "high contrast", "soft haze")

    @property
    def model_id(self) -> str:
        return "toy-colour-critic"

    def cache_identity(self, mode: str, task: Task | str) -> str:
        return f"toy-colour-critic:{mode}:{task}"

    async def acritique(
        self,
        prompt: str,
        image: Image.Image,
        *,
        sources: Sequence[Image.Image] = (),
        task: Task | str | None = None,
    ) -> Critique:
        stat = ImageStat.Stat(image)
        spread = sum(stat.stddev) / 3  # 0..~128
        score = round(min(4.0, 1.0 + spread / 40), 2)
        word = self.words[int(sum(stat.mean)) % len(self.words)]
        return Critique(
            task=Task.T2I,
            judgements=[
                DimensionJudgement(dimension=Dimension.TEXT_FAITHFULNESS, score=score, justification="toy"),
                DimensionJudgement(dimension=Dimension.PHYSICAL_QUALITY, score=score, justification="toy"),
            ],
            summary=f"colour spread {spread:.1f}",
            refined_request=f"{prompt}, {word}",
        )


def build_host(refine_graph) -> object:
    host = StateGraph(HostState)
    host.add_node("write_prompt", write_prompt)
    host.add_node("refine", refine_graph)
    host.add_node("caption", caption)
    host.add_edge(START, "write_prompt")
    host.add_edge("write_prompt", "refine")
    host.add_edge("refine", "caption")
    host.add_edge("caption", END)
    return host.compile(checkpointer=InMemorySaver())


def load_parts(args: argparse.Namespace, workdir: Path) -> tuple[object, object]:
    from gcr.generators.registry import create_generator

    if args.offline:
        from gcr.dev.tiny_pipelines import build_tiny_pipeline

        pipeline = build_tiny_pipeline("sd", workdir / "tiny-sd")
        return create_generator("diffusers", str(pipeline), device="cpu"), ToyColourCritic()
    from gcr.critic.loading import load_critic

    generator = create_generator("diffusers", args.generator)
    return generator, load_critic(args.critic, model=args.model, task=generator.task)


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="gcr-example-"))
    generator, critic = load_parts(args, workdir)
    settings = RefineContext(
        run_dir=str(args.out or workdir / "run"),
        max_rounds=args.rounds,
        candidates=2,
        target_reward=0.95,
        interactive=args.interactive,
        **({"steps": 2, "width": 32, "height": 32} if args.offline else {}),
    )
    # The host has no context schema of its own, so the refine graph uses `defaults`.
    refine = build_graph(generator=generator, critic=critic, defaults=settings).compile()
    host = build_host(refine)
    config = {"configurable": {"thread_id": "example"}}
    payload: object = {"topic": args.topic}
    while True:
        review = None
        async for _namespace, mode, chunk in host.astream(
            payload, config, stream_mode=["custom", "updates"], subgraphs=True
        ):
            if mode == "custom" and chunk["type"] == "round_finished":
                print(f"round {chunk['round']}: best reward {chunk['best_reward']:.3f}  {chunk['prompt']}")
            elif mode == "updates" and "__interrupt__" in chunk:
                review = chunk["__interrupt__"][0].value
        if review is None:
            break
        answer = input(f"next prompt: {review['next_prompt']!r} — [a]ccept / [r]eject / type a new one: ")
        payload = Command(resume={"a": "accept", "r": "reject"}.get(answer.strip(), answer))
    state = await host.aget_state(config)
    print(state.values["caption"])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topic")
    parser.add_argument("--generator", default="black-forest-labs/FLUX.1-schnell")
    parser.add_argument("--critic", default=None, help="critic URL, folder or Hub id (default: released)")
    parser.add_argument("--model", default=None, help="model name on the critic server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--interactive", action="store_true")
    parser.add_argument("--offline", action="store_true", help="tiny pipeline and toy critic, no downloads")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
