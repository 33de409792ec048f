"""A ReAct agent that calls gcr's refinement as one tool (``gcr.agent.as_tool``).

The agent is LangGraph's prebuilt ``create_react_agent``. Here its chat model is
scripted (it asks for one ``refine_image`` call, then answers with the image it got
back), so the example runs offline; put any tool-calling chat model in its place
(``ChatOpenAI``, ``ChatAnthropic``, ...) for a real agent.

Offline (tiny random diffusers pipeline, a toy colour critic, no downloads)::

    python examples/react_agent.py "a lighthouse at dusk" --offline

Offline pipeline, real or scripted critic server::

    python examples/react_agent.py "a lighthouse at dusk" --offline --critic http://localhost:8000/v1

Real models::

    python examples/react_agent.py "a lighthouse at dusk" \\
        --generator black-forest-labs/FLUX.1-schnell --critic http://localhost:8000/v1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.prebuilt import create_react_agent
from PIL import Image, ImageStat

from gcr.agent import RefineContext, as_tool
from gcr.critic.schema import Critique, Dimension, DimensionJudgement, Task


class ScriptedChatModel(GenericFakeChatModel):
    """Replies with the queued messages; accepts tools so an agent can bind them."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self


def scripted_model(topic: str, rounds: int) -> ScriptedChatModel:
    """One tool call asking gcr for an image of ``topic``, then a closing answer."""
    call = {"name": "refine_image", "args": {"prompt": f"{topic}, detailed illustration",
            "max_rounds": rounds}, "id": "call-refine-1", "type": "tool_call"}  # fmt: skip
    closing = AIMessage(content="Your image is ready: see the refine_image result above.")
    return ScriptedChatModel(messages=iter([AIMessage(content="", tool_calls=[call]), closing]))


class ToyColourCritic:
    """Scores colour spread; a stand-in that needs no model. Its scores mean nothing."""

    @property
    def model_id(self) -> str:
        return "toy-colour-critic"

    def cache_identity(self, mode: str, task: Task | str) -> str:
        return f"toy-colour-critic:{mode}:{task}"

    async def acritique(self, prompt: str, image: Image.Image, *, sources: Sequence[Image.Image] = (),
                        task: Task | str | None = None) -> Critique:  # fmt: skip
        score = round(min(4.0, 1.0 + sum(ImageStat.Stat(image).stddev) / 120), 2)
        judged = [DimensionJudgement(dimension=d, score=score, justification="colour spread")
                  for d in (Dimension.TEXT_FAITHFULNESS, Dimension.PHYSICAL_QUALITY)]  # fmt: skip
        return Critique(task=Task.T2I, judgements=judged, refined_request=f"{prompt}, vivid colours")


def load_parts(args: argparse.Namespace, workdir: Path) -> tuple[Any, Any]:
    from gcr.critic.loading import load_critic
    from gcr.generators.registry import create_generator

    if args.offline:
        from gcr.dev.tiny_pipelines import build_tiny_pipeline

        pipeline = build_tiny_pipeline("sd", workdir / "tiny-sd")
        generator = create_generator("diffusers", str(pipeline), device="cpu")
    else:
        generator = create_generator("diffusers", args.generator)
    if args.offline and args.critic is None:
        return generator, ToyColourCritic()
    return generator, load_critic(args.critic, model=args.model, task=generator.task)


async def main(args: argparse.Namespace) -> list[Any]:
    workdir = Path(tempfile.mkdtemp(prefix="gcr-react-"))
    generator, critic = load_parts(args, workdir)
    settings = RefineContext(
        candidates=1, target_reward=0.95, **({"steps": 2, "width": 32, "height": 32} if args.offline else {})
    )
    tool = as_tool(generator=generator, critic=critic, defaults=settings, runs_dir=args.runs_dir or workdir)
    agent = create_react_agent(scripted_model(args.topic, args.rounds), [tool])
    try:
        state = await agent.ainvoke({"messages": [("user", f"Make me a picture of {args.topic}.")]})
    finally:
        close = getattr(critic, "aclose", None)
        if close is not None:
            await close()
    for message in state["messages"]:
        if isinstance(message, ToolMessage):
            answer = json.loads(message.content)
            print(f"tool: best reward {answer['best_reward']:.3f} after {answer['rounds']} round(s)")
            print(f"tool: {answer['best_image']}")
    print(f"agent: {state['messages'][-1].content}")
    return state["messages"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topic")
    parser.add_argument("--generator", default="black-forest-labs/FLUX.1-schnell")
    parser.add_argument("--critic", default=None, help="critic URL, folder or Hub id (default: released)")
    parser.add_argument("--model", default=None, help="model name on the critic server")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--offline", action="store_true", help="tiny pipeline (and toy critic), no downloads")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
