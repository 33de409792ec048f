"""Refiners: turn a critique into the next prompt.

Two come with gcr:

* :class:`CritiqueRefiner` (the default) takes the critic's own refined request.
  RationalRewards writes one in every critique, so no second model is needed.
* :class:`LLMRefiner` asks any OpenAI-compatible chat model to rewrite the prompt
  from the per-dimension critique, with the template ``gcr/prompts/refiner.md``
  (or the caller's own).

Neither decides whether a proposal is acceptable: the graph passes every
proposal through :class:`gcr.agent.guard.PromptGuard`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from gcr.critic.schema import Critique
from gcr.errors import ConfigError, RefinerError
from gcr.redact import MASK
from gcr.task import Task

logger = logging.getLogger(__name__)

_PROMPT_BLOCK = re.compile(r"<prompt>(.*?)</prompt>", re.DOTALL | re.IGNORECASE)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class RefineRequest:
    """Everything a refiner may use to write the next prompt."""

    user_prompt: str
    current_prompt: str
    critique: Critique
    task: Task
    tried_prompts: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Proposal:
    """A refiner's answer: the proposed prompt, or ``None`` with a note saying why not."""

    prompt: str | None
    note: str | None = None


@runtime_checkable
class Refiner(Protocol):
    """Anything that proposes the next prompt from a critique."""

    @property
    def name(self) -> str:
        """Short label recorded with each refinement (``critic``, ``llm``, ...)."""
        ...

    async def propose(self, request: RefineRequest) -> Proposal:
        """Return a proposal; raise :class:`gcr.errors.RefinerError` when the refiner itself fails."""
        ...


class CritiqueRefiner:
    """Uses the refined request that the critic wrote in its critique."""

    name = "critic"

    async def propose(self, request: RefineRequest) -> Proposal:
        text = (request.critique.refined_request or "").strip()
        if not text:
            return Proposal(None, "the critique has no refined request")
        return Proposal(text)


def load_template(path: str | Path | None = None) -> tuple[Template, Template]:
    """The (system, user) templates of the LLM refiner, from ``path`` or the packaged default."""
    if path is None:
        text = resources.files("gcr.prompts").joinpath("refiner.md").read_text("utf-8")
        where = "gcr/prompts/refiner.md"
    else:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"refiner template not found: {p}")
        text, where = p.read_text("utf-8"), str(p)
    head, sep, user = text.partition("\n# User\n")
    if not sep or not head.lstrip().startswith("# System"):
        raise ConfigError(
            f"refiner template {where} needs a '# System' section followed by a '# User' section"
        )
    system = head.lstrip().removeprefix("# System").strip()
    return Template(system), Template(user.strip())


def render_critique(critique: Critique) -> str:
    """The critique as compact text for a rewriting model."""
    lines = []
    for j in critique.judgements:
        score = "N/A" if j.score is None else f"{j.score:g}/4"
        lines.append(f"- {j.dimension.header} ({score}): {j.justification.strip() or 'no justification'}")
    if critique.summary:
        lines.append(f"Summary: {critique.summary.strip()}")
    if critique.refinement_comments:
        lines.append(f"Critic's advice: {critique.refinement_comments.strip()}")
    if critique.refined_request:
        lines.append(f"Critic's own suggested prompt: {critique.refined_request.strip()}")
    return "\n".join(lines)


def parse_rewrite(answer: str) -> Proposal:
    """Read the proposed prompt out of a rewriting model's answer."""
    text = _THINK_BLOCK.sub("", answer).strip()
    blocks = _PROMPT_BLOCK.findall(text)
    if blocks:
        chosen = blocks[-1].strip()
        return Proposal(chosen, None) if chosen else Proposal(None, "the <prompt> block is empty")
    if text and "\n\n" not in text and "<prompt>" not in text.lower():
        return Proposal(text.strip().strip('"'), "the answer had no <prompt> block; used it whole")
    return Proposal(None, "the rewriter's answer has no <prompt> block")


_TASK_WORDS = {
    Task.T2I: "text-to-image: the prompt describes the whole picture to generate.",
    Task.EDIT: "image editing: the prompt is an instruction applied to the user's source image.",
}


class LLMRefiner:
    """Rewrites the prompt with an OpenAI-compatible chat model.

    ``api_key_env`` names the environment variable holding the key (never logged);
    servers that need none (vLLM, ``transformers serve``) work without it.
    """

    name = "llm"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "GCR_REFINER_API_KEY",
        template: str | Path | None = None,
        temperature: float = 0.3,
        max_tokens: int = 512,
        timeout: float = 120.0,
        max_retries: int = 3,
    ) -> None:
        if not base_url:
            raise ConfigError("the LLM refiner needs a server URL (for example http://localhost:8001/v1)")
        if not model:
            raise ConfigError("the LLM refiner needs a model name as the server knows it")
        if urlsplit(base_url).password == MASK:
            raise ConfigError(
                f"the password of refiner URL {base_url!r} was left out when it was saved (gcr never "
                "writes passwords): give the full URL again with --refiner-url"
            )
        from openai import AsyncOpenAI

        self.base_url = base_url
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._system, self._user = load_template(template)
        self._client = AsyncOpenAI(
            base_url=base_url,
            api_key=os.environ.get(api_key_env) or "not-needed",
            timeout=timeout,
            max_retries=max_retries,
        )

    def messages(self, request: RefineRequest) -> list[dict[str, str]]:
        """The chat messages sent for ``request`` (public so that callers can inspect them)."""
        values = {
            "task_description": _TASK_WORDS[request.task],
            "user_prompt": request.user_prompt,
            "current_prompt": request.current_prompt,
            "critique": render_critique(request.critique),
            "tried_prompts": "\n".join(f"- {p}" for p in request.tried_prompts) or "(none)",
        }
        try:
            return [
                {"role": "system", "content": self._system.substitute(values)},
                {"role": "user", "content": self._user.substitute(values)},
            ]
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"refiner template has an unknown or malformed placeholder: {exc}") from None

    async def propose(self, request: RefineRequest) -> Proposal:
        import openai

        try:
            reply = await self._client.chat.completions.create(
                model=self.model,
                messages=self.messages(request),  # type: ignore[arg-type]
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        except openai.APIConnectionError as exc:
            raise RefinerError(f"cannot reach the prompt rewriter at {self.base_url}: {exc}") from exc
        except openai.APIStatusError as exc:
            raise RefinerError(
                f"the prompt rewriter at {self.base_url} answered HTTP {exc.status_code}: {exc.message}"
            ) from exc
        if not reply.choices or reply.choices[0].message.content is None:
            raise RefinerError(f"the prompt rewriter at {self.base_url} sent an empty answer")
        proposal = parse_rewrite(reply.choices[0].message.content)
        logger.debug("LLM refiner proposed %r (%s)", proposal.prompt, proposal.note)
        return proposal

    async def aclose(self) -> None:
        await self._client.close()


def make_refiner(kind: str, *, url: str | None = None, model: str | None = None, **kwargs: object) -> Refiner:
    """The refiner named ``kind``: ``critic`` (default) or ``llm`` (needs ``url`` and ``model``)."""
    if kind == "critic":
        return CritiqueRefiner()
    if kind == "llm":
        return LLMRefiner(url or "", model or "", **kwargs)  # type: ignore[arg-type]
    raise ConfigError(f"unknown refiner {kind!r}: use 'critic' or 'llm'")
